/*
 * Hosted-only pieces of the debug layer (they use stdio): the leak report.
 * Included by poolkit/poolkit.h on hosted builds (PK_HOSTED); the library
 * contains them only when built hosted.
 */
#ifndef POOLKIT_HOSTED_H
#define POOLKIT_HOSTED_H

#include <stdio.h>

#include "poolkit/allocator.h"
#include "poolkit/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The sites pk_leak_report lists one by one (its stack table's size). */
#define PK_LEAK_REPORT_SITES 64

/* Prints the live allocations of a to out, grouped by allocation site (file
 * and line; "unknown site" for allocations made without the call-site
 * macros), one line per site, largest byte count first, then a total:
 *
 *   poolkit: leaks in rx-pool: 3 sites
 *     192 bytes in 3 allocations at app/rx.c:42 (owner 7)
 *     128 bytes in 2 allocations at app/cmd.c:57 (owners differ)
 *     40 bytes in 1 allocation at unknown site
 *     total: 360 bytes in 6 allocations
 *
 * Bytes are the requested sizes. A site's owner is shown when its
 * allocations were tagged with one (pk_set_owner); "owners differ" when they
 * have several. The first PK_LEAK_REPORT_SITES (64) sites met, oldest
 * allocation first, are listed; the allocations at further sites are summed
 * in one line before the total ("and 96 bytes in 4 more allocations at other
 * sites"), so the report allocates nothing: its table is on the stack (about
 * 2.5 KiB on a 64-bit target). With no live allocation it prints one line,
 * "poolkit: leaks in NAME: none". After a mark (pk_leak_report_since) the
 * first line reads "leaks in NAME since mark M". Release builds print one
 * line saying that leak tracking needs a debug build (PK_DEBUG=1,
 * POOLKIT_DEBUG=ON); so does a debug build for an allocator whose ops have no
 * `leaks` (a user's allocator, see poolkit/allocator.h).
 *
 * Returns the number of live allocations listed (0 in release builds). Holds
 * a's lock while it walks (as pk_leaks does), not while it prints. O(live x
 * 64) plus the printing. Not for interrupt handlers or signal handlers. */
size_t pk_leak_report(pk_allocator *a, FILE *out);

/* Like pk_leak_report, for the allocations made after mark (pk_leak_mark)
 * that are still live: what a phase of the program leaked. */
size_t pk_leak_report_since(pk_allocator *a, uint64_t mark, FILE *out);

#ifdef __cplusplus
}
#endif

#endif
