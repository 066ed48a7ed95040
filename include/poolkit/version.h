/* poolkit version. Bump all four together; the SONAME follows the major. */
#ifndef POOLKIT_VERSION_H
#define POOLKIT_VERSION_H

#define PK_VERSION_MAJOR 0
#define PK_VERSION_MINOR 1
#define PK_VERSION_PATCH 0
#define PK_VERSION_STRING "0.1.0"

#endif
