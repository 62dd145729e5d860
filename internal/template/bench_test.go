package template

import "testing"

func benchHeader(b *testing.B, src string) {
	r, rec := testRequest()
	tp := MustParse(src)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = tp.Header(r, rec)
	}
}

func BenchmarkTemplateConstant(b *testing.B) { benchHeader(b, "static-value") }

func BenchmarkTemplateOnePlaceholder(b *testing.B) { benchHeader(b, "tenant-${header:X-Tenant}") }

func BenchmarkTemplateThreePlaceholders(b *testing.B) {
	benchHeader(b, "${consumer}/${claim:sub}/${request_id}")
}

func BenchmarkTemplatePath(b *testing.B) {
	p, err := ParsePath("/v2/accounts/{id}/orders/{order}", "/users/{id}/orders/{order}")
	if err != nil {
		b.Fatal(err)
	}
	rec := recWith("id", "42", "order", "o-1")
	b.ReportAllocs()
	for b.Loop() {
		var buf [128]byte
		_ = string(p.AppendPath(buf[:0], rec))
	}
}
