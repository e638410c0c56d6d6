package resume

import (
	"fmt"
	"testing"

	"github.com/shiftlock/shiftlock/sim"
	"github.com/shiftlock/shiftlock/tcg/hash"
)

// BenchmarkResumeUnlock measures the time from "notify post" on the
// daemon's socket to every range of every drive unlocked (the response
// comes once the unlock is done), drives over real opalwire sockets, after
// a power cycle of each (not timed).
func BenchmarkResumeUnlock(b *testing.B) {
	for _, tc := range []struct {
		drives, ranges int
		mbr            bool
	}{{1, 1, false}, {2, 1, false}, {2, 2, true}} {
		b.Run(fmt.Sprintf("drives=%d/ranges=%d/mbr=%v", tc.drives, tc.ranges, tc.mbr), func(b *testing.B) {
			dir := shortDir(b)
			dm := startDaemon(b, dir, DaemonOptions{})
			var tds []*testDrive
			for i := range tc.drives {
				td := newTestDrive(b, dir, fmt.Sprint("d", i), sim.Config{}, hash.None, tc.ranges)
				if tc.mbr {
					td.enableShadowMBR()
				}
				enable(b, td, dir, dm, EnableOptions{All: true})
				tds = append(tds, td)
			}
			ctx := testCtx(b)
			exchanges := 0
			for b.Loop() {
				b.StopTimer()
				for _, td := range tds {
					td.d.PowerCycle()
				}
				b.StartTimer()
				rep := notify(b, ctx, dm.socket)
				b.StopTimer()
				if !rep.OK() || len(rep.Drives) != tc.drives {
					b.Fatalf("run = %+v", rep)
				}
				exchanges = rep.Exchanges()
				for _, td := range tds {
					if !td.readable(uint32(tc.ranges)) {
						b.Fatal("still locked")
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(exchanges), "exchanges/op")
		})
	}
}
