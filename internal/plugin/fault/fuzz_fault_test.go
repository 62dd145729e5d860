package fault

import (
	"testing"

	"github.com/portico-gw/portico/internal/plugin/plugintest"
)

// FuzzFaultConfig: any config either fails to build with an error or
// builds an instance whose settings are within the documented bounds.
func FuzzFaultConfig(f *testing.F) {
	for _, s := range []string{
		"{}", "{abort: {status: 503, percent: 5}}", "{delay: {duration: 200ms, percent: 10}}",
		"{abort: {status: 503, percent: 5, grpc_status: 14}, when_header: X-Fault-Test}",
		"{delay: {duration: 1h, percent: 100}, abort: {status: 200, percent: 0}}",
		"{abort: {status: 503, percent: .inf}}", "{delay: {duration: -1s, percent: 1e309}}", "[1, 2]", "abort: x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		p, _, err := plugintest.Build[*Fault](t, "fault_injection", src)
		if err != nil {
			return
		}
		if p.Delay == nil && p.Abort == nil {
			t.Fatalf("%q: built with no fault", src)
		}
		if d := p.Delay; d != nil && (*d.Percent < 0 || *d.Percent > 100 || d.Duration <= 0 || d.Duration.D() > MaxDelay) {
			t.Fatalf("%q: delay %+v accepted", src, *d)
		}
		if a := p.Abort; a != nil && (*a.Percent < 0 || *a.Percent > 100 || a.Status < 200 || a.Status > 599 || p.grpcCode < 0 || p.grpcCode > 16) {
			t.Fatalf("%q: abort %+v accepted", src, *a)
		}
	})
}
