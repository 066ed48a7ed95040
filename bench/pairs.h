/* The command line shared by the pair benchmarks (bench_pool, bench_slab):
 * each mode is a loop of alloc+free pairs; modes[0] is the loop calling empty
 * functions, subtracted from the others.
 *
 *   PROGRAM MODE PAIRS          run PAIRS pairs once (for callgrind, which
 *                               counts only inside the loops)
 *   PROGRAM --modes             list the modes measured (all but modes[0])
 *   PROGRAM --time PAIRS RUNS   ns per pair of every mode: median, min and
 *                               max of RUNS interleaved runs, net of modes[0]
 */
#ifndef POOLKIT_BENCH_PAIRS_H
#define POOLKIT_BENCH_PAIRS_H

#include <stddef.h>

typedef struct {
    const char *name;
    void (*run)(long pairs);
} bench_mode;

/* Runs the command line above; setup is called once before any loop. Returns
 * the exit status (2 for bad arguments, with a message on stderr). */
int bench_pairs_main(const char *program, int argc, char **argv, const bench_mode *modes, size_t count,
                     void (*setup)(void));

#endif
