/* The self-test's deliberate breakage (inject.c): NULL, or what failed. */
#ifndef PK_CM_INJECT_H
#define PK_CM_INJECT_H

const char *pk_cm_inject(void);

#endif
