/*
 * The subcommands of the `poolkit` tool (tools/poolkit.c dispatches to them).
 * Each gets the arguments after the tool's name: argv[0] is the subcommand's
 * own name ("demo", "bench", "plan"), its options follow. Each returns the process's
 * exit status: 0 done, 1 the run failed (a page not written, an allocator
 * misbehaving), 2 a bad option or argument (after a message on stderr that
 * names it). Hosted tool code: stdio allowed.
 */
#ifndef POOLKIT_TOOLS_COMMANDS_H
#define POOLKIT_TOOLS_COMMANDS_H

int demo_main(int argc, char **argv);  /* tools/demo/demo.c */
int bench_main(int argc, char **argv); /* tools/bench/bench.c */
int replay_main(int argc, char **argv); /* tools/replay/replay.c */
int plan_main(int argc, char **argv);  /* tools/plan/plan.c */

#endif
