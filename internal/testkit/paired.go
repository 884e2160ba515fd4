package testkit

import (
	"testing"
	"time"
)

// PairedBatch is how many operations Paired runs in one batch.
const PairedBatch = 500

// Paired compares two ways of doing one operation, base and other, in one
// benchmark: each iteration runs a batch of PairedBatch calls of each, the
// order alternating from one iteration to the next, so that a change of
// the machine's speed during the run falls on both alike. It reports the
// ratio of other's process CPU time (every goroutine, an in-process server
// included) to base's as "cpu-ratio", the same of wall time as
// "wall-ratio", and both CPU times per operation. Comparing base with
// itself shows the measurement's own error.
func Paired(b *testing.B, base, other func()) {
	b.Helper()
	ops := [2]func(){base, other}
	var cpu, wall [2]time.Duration
	round := 0
	for b.Loop() {
		for k := range 2 {
			i := (k + round) % 2
			t0, c0 := time.Now(), ProcessCPU()
			for range PairedBatch {
				ops[i]()
			}
			wall[i] += time.Since(t0)
			cpu[i] += ProcessCPU() - c0
		}
		round++
	}
	n := float64(round * PairedBatch)
	b.ReportMetric(float64(wall[1])/float64(wall[0]), "wall-ratio")
	if cpu[0] > 0 {
		b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "cpu-ratio")
		b.ReportMetric(float64(cpu[0].Nanoseconds())/n, "base-cpu-ns/op")
		b.ReportMetric(float64(cpu[1].Nanoseconds())/n, "cpu-ns/op")
	}
}
