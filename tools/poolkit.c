/*
 * poolkit: the project's command-line tool.
 *
 *   poolkit demo [options]    malloc against poolkit's allocators on an SSD
 *                             firmware workload; tables, JSON, build/report/index.html
 *   poolkit bench [options]   every poolkit allocator against glibc malloc,
 *                             jemalloc, mimalloc and tcmalloc; build/report/bench.html
 *   poolkit replay TRACE      an allocation trace replayed on poolkit's allocators
 *                             in a fixed arena: footprint, fragmentation, failures, latency
 *   poolkit plan TRACE [options]  pools and a heap sized from an allocation
 *                             trace, printed as C, and the trace replayed on them
 *   poolkit --help            this text
 *
 * `poolkit COMMAND --help` tells a command's options. An unknown command or
 * option gives a message naming it and exit status 2.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "poolkit/version.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"demo", demo_main, "malloc against the pools on an SSD firmware workload (make demo)"},
    {"bench", bench_main, "every poolkit allocator against glibc, jemalloc, mimalloc, tcmalloc (make bench)"},
    {"replay", replay_main, "an allocation trace replayed on each poolkit allocator in a fixed arena"},
    {"plan", plan_main, "pools and a heap sized from a trace, as C, replayed on the trace"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "usage: poolkit COMMAND [options]   (poolkit %s)\n\ncommands:\n", PK_VERSION_STRING);
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        fprintf(out, "  %-7s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out, "\n`poolkit COMMAND --help` lists a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("poolkit %s\n", PK_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "poolkit: unknown %s '%s'\n", argv[1][0] == '-' ? "option" : "command", argv[1]);
    usage(stderr);
    return 2;
}
