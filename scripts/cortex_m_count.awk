# cortex_m_count.awk SYMBOLS TRACE: the instruction counter of
# scripts/cortex_m_bench.sh. TRACE is QEMU's `-singlestep -d exec,nochain`
# log (one "Trace" line per executed instruction, its pc the second field
# within the brackets), read from a pipe; SYMBOLS has a line
# "KIND NAME START SIZE" (decimal, Thumb bit cleared) per function of the
# measure image (tests/cortex-m/measure.c), KIND being
#   wrapper  a measure_* function: a call starts at its entry;
#   home     the image's other code: a call ends at the first instruction
#            executed there;
#   phase    a phase_* marker (home code too): the calls after its entry
#            belong to that phase.
# Between the start and the end every instruction is counted but the
# wrapper's own. Prints "PHASE NAME CALLS MEAN MAX" per phase and wrapper
# (NAME without measure_), and "known N COUNT" for each call of
# measure_known, whose expected count its caller states.
FNR == NR {
    for (a = $3; a < $3 + $4; a += 2) {
        pc = sprintf("%08x", a)
        if ($1 == "wrapper") {
            wrapper[pc] = 1
        } else {
            home[pc] = 1
        }
    }
    if ($1 == "wrapper") {
        entry[sprintf("%08x", $3)] = substr($2, 9)
    } else if ($1 == "phase") {
        marker[sprintf("%08x", $3)] = substr($2, 7)
    }
    next
}
$1 != "Trace" { next }
{
    pc = substr($4, 11, 8)
    if (counting) {
        if (pc in home) {
            counting = 0
            key = phase " " name
            calls[key]++
            total[key] += n
            if (n > worst[key]) {
                worst[key] = n
            }
            if (name == "known") {
                known[++known_calls] = n
            }
        } else if (!(pc in wrapper)) {
            n++
        }
    }
    if (!counting) {
        if (pc in entry) {
            counting = 1
            name = entry[pc]
            n = 0
        } else if (pc in marker) {
            phase = marker[pc]
        }
    }
}
END {
    if (counting) {
        print "cortex_m_count.awk: the trace ended inside a call of measure_" name > "/dev/stderr"
        exit 1
    }
    for (i = 1; i <= known_calls; i++) {
        print "known", i, known[i]
    }
    for (key in calls) {
        if (key !~ / known$/) {
            printf "%s %d %.1f %d\n", key, calls[key], total[key] / calls[key], worst[key]
        }
    }
}
