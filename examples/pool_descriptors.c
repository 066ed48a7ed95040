/*
 * pool_descriptors: fixed-size pools the way an SSD controller's firmware uses
 * them. Three statically defined pools, no heap, no init calls:
 *   cmd_pool  NVMe submission queue entries (64 bytes, cache-line aligned)
 *   cqe_pool  completion queue entries (16 bytes)
 *   dma_pool  DMA descriptors, placed in the linker section ".dma_bss" (on a
 *             real controller: DMA-safe SRAM; `readelf -S` shows it here)
 * A deterministic host load rises and falls; when a pool runs dry the firmware
 * counts the stall and retries on the next tick (back-pressure, no error). At
 * the end a deliberate double free (and a free to the wrong pool) is caught by
 * a custom fault handler. Exits 0 only if everything behaved.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "poolkit/pool.h"

typedef struct { /* NVMe common command format: 16 dwords */
    uint8_t opcode, flags;
    uint16_t cid;
    uint32_t nsid;
    uint64_t rsvd, mptr, prp1, prp2;
    uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
} nvme_cmd;
typedef struct { /* NVMe completion queue entry: 4 dwords */
    uint32_t dw0, dw1;
    uint16_t sq_head, sq_id, cid, status;
} nvme_cqe;
typedef struct { /* one scatter-gather segment of a data transfer */
    uint64_t host_addr;
    uint32_t sram_offset, length;
    uint16_t cid, flags;
    uint32_t next;
} dma_desc;
_Static_assert(sizeof(nvme_cmd) == 64 && sizeof(nvme_cqe) == 16, "NVMe layouts");

#define CMD_SLOTS 32
#define CQE_SLOTS 16
#define DMA_SLOTS 48
#define MAX_SEGS 4
#define TICKS 1600

PK_POOL_DEFINE(cmd_pool, sizeof(nvme_cmd), CMD_SLOTS, 64);
PK_POOL_DEFINE(cqe_pool, sizeof(nvme_cqe), CQE_SLOTS, 16);
PK_POOL_DEFINE_IN(dma_pool, sizeof(dma_desc), DMA_SLOTS, 32, ".dma_bss");

typedef struct {        /* a command the controller has fetched */
    nvme_cmd *cmd;      /* NULL: free slot */
    dma_desc *seg[MAX_SEGS];
    unsigned need, have;
    unsigned due;       /* tick the media operation completes, once all segments are held */
} inflight;

static inflight slots[CMD_SLOTS];
static nvme_cqe *cq[CQE_SLOTS]; /* completion queue ring, waiting for the host */
static unsigned cq_head, cq_len, sq_backlog, in_flight;
static unsigned long stall_cmd, stall_dma, stall_cqe;
static uint32_t rng = 0x5eed2024u;

static uint32_t next_rand(void) /* xorshift32: same run every time */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

typedef struct { unsigned count; pk_status kinds[4]; } fault_log;

static void on_fault(const pk_fault *f, void *ctx)
{
    fault_log *fl = ctx;
    if (fl->count < 4) {
        fl->kinds[fl->count] = f->kind;
    }
    fl->count++;
    printf("  fault handler: %-9s %s\n", f->allocator, pk_status_str(f->kind));
}

static void tick(unsigned t, unsigned load)
{
    static uint16_t next_cid;
    /* 1. The host rings the doorbell; fetch while a command descriptor is free. */
    sq_backlog += next_rand() % (2 * load + 1) / 3; /* 0 to 2 * load / 3 new commands */
    for (unsigned i = 0; sq_backlog > 0; i++) {
        nvme_cmd *c = pk_pool_alloc(&cmd_pool);
        if (c == NULL) { stall_cmd++; break; } /* all CMD_SLOTS in flight */
        while (slots[i].cmd != NULL) i++; /* one is free: the pool has CMD_SLOTS blocks */
        memset(c, 0, sizeof *c);
        c->opcode = (next_rand() & 1) ? 0x02 : 0x01; /* read or write */
        c->cid = next_cid++;
        slots[i] = (inflight){c, {NULL}, 1 + next_rand() % MAX_SEGS, 0, 0};
        sq_backlog--;
        in_flight++;
    }
    for (unsigned i = 0; i < CMD_SLOTS; i++) {
        inflight *s = &slots[i];
        if (s->cmd == NULL) continue;
        /* 2. Gather DMA descriptors; a dry pool parks the command until later. */
        while (s->have < s->need) {
            dma_desc *d = pk_pool_alloc(&dma_pool);
            if (d == NULL) { stall_dma++; break; }
            *d = (dma_desc){0x80000000u + 4096u * s->have, 4096u * i, 4096, s->cmd->cid, 0, 0};
            s->seg[s->have++] = d;
            if (s->have == s->need) s->due = t + 2 + next_rand() % 19;
        }
        /* 3. Media done: post a completion, if there is room for one. */
        if (s->have < s->need || t < s->due) continue;
        nvme_cqe *e = pk_pool_alloc(&cqe_pool);
        if (e == NULL) { stall_cqe++; continue; }
        *e = (nvme_cqe){0, 0, 0, 1, s->cmd->cid, 0};
        cq[(cq_head + cq_len++) % CQE_SLOTS] = e;
        for (unsigned k = 0; k < s->have; k++) pk_pool_free(&dma_pool, s->seg[k]);
        pk_pool_free(&cmd_pool, s->cmd);
        s->cmd = NULL;
        in_flight--;
    }
    /* 4. The host reaps completions, slowly while it is busy submitting. */
    unsigned reap = 1 + next_rand() % (load > 5 ? 2 : 3);
    for (; reap > 0 && cq_len > 0; reap--, cq_len--, cq_head = (cq_head + 1) % CQE_SLOTS) {
        pk_pool_free(&cqe_pool, cq[cq_head]);
    }
}

static int report(pk_pool *p, const char *what)
{
    pk_stats s;
    pk_pool_stats(p, &s);
    pk_status ok = pk_pool_check(p);
    printf("%-9s %-17s %3zu x %2zu B %5zu %7" PRIu64 " %7" PRIu64 " %6" PRIu64 " %4" PRIu64
           "  %s\n", pk_name(pk_pool_allocator(p)), what, pk_pool_capacity(p), s.block_size,
           s.peak_live, s.allocs, s.frees, s.failures, s.rejected, pk_status_str(ok));
    return ok == PK_OK && s.live == 0;
}

int main(void)
{
    fault_log faults = {0, {PK_OK}};
    pk_set_fault_handler(on_fault, &faults);
    printf("poolkit %s: NVMe command path on three static pools (seed 0x%08" PRIx32 ")\n\n",
           PK_VERSION_STRING, rng);
    printf(" tick  load  in flight  SQ backlog  CQ depth\n");
    unsigned t = 0;
    for (; t < TICKS; t++) {
        unsigned phase = t % 800; /* load rises from 0 to 8 and falls back, twice */
        unsigned load = (phase < 400 ? phase : 800 - phase) / 50;
        tick(t, load);
        if ((t + 1) % 200 == 0) {
            printf("%5u  %4u  %9u  %10u  %8u\n", t + 1, load, in_flight, sq_backlog, cq_len);
        }
    }
    while (sq_backlog > 0 || in_flight > 0 || cq_len > 0) tick(t++, 0); /* drain */
    printf("drained at tick %u; allocs that found a pool dry (retried on a later tick):\n"
           "  cmd %lu, dma %lu, cqe %lu\n\n", t, stall_cmd, stall_dma, stall_cqe);

    printf("misuse, on purpose:\n");
    nvme_cqe *e = pk_pool_alloc(&cqe_pool);
    nvme_cmd *c = pk_pool_alloc(&cmd_pool);
    pk_pool_free(&cqe_pool, e);
    pk_status twice = pk_pool_free(&cqe_pool, e);    /* double free */
    pk_status wrong = pk_pool_free(&dma_pool, c);    /* a command freed to the DMA pool */
    pk_pool_free(&cmd_pool, c);
    printf("  returned: %s, %s\n\n", pk_status_str(twice), pk_status_str(wrong));

    printf("%-9s %-17s %10s %5s %7s %7s %6s %4s  %s\n", "pool", "holds", "blocks", "peak",
           "allocs", "frees", "fails", "rej", "check");
    int ok = report(&cmd_pool, "NVMe commands");
    ok &= report(&cqe_pool, "completions");
    ok &= report(&dma_pool, "DMA (.dma_bss)");
    ok &= twice == PK_ERR_DOUBLE_FREE && wrong == PK_ERR_FOREIGN_PTR && faults.count == 2 &&
          faults.kinds[0] == PK_ERR_DOUBLE_FREE && faults.kinds[1] == PK_ERR_FOREIGN_PTR &&
          stall_cmd > 0 && stall_dma > 0 && stall_cqe > 0;
    printf("\n%s\n", ok ? "all pools empty and consistent; both misuses caught" : "FAILED");
    pk_set_fault_handler(NULL, NULL);
    return ok ? 0 : 1;
}
