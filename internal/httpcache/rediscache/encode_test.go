package rediscache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/httpcache"
)

func encoded(e *httpcache.Entry) string {
	return string(appendEntry(nil, e, time.Unix(1700000000, 0)))
}

func TestDecodeGarbage(t *testing.T) {
	good := encoded(entry("a", "t1", "t2"))
	if _, _, err := decodeEntry(good); err != nil {
		t.Fatalf("good entry: %v", err)
	}
	key := strings.Repeat("k", 32)
	// withMeta is an entry of the given metadata (no times) and no body.
	withMeta := func(meta string) string {
		return string(binary.AppendUvarint([]byte{formatV1, flagNoResponseTime | flagNoRequestTime}, uint64(len(meta)))) + meta
	}
	if _, _, err := decodeEntry(withMeta(key + strings.Repeat("\x00", 11))); err != nil {
		t.Fatalf("minimal entry: %v", err)
	}
	cases := map[string]string{
		"empty":           "",
		"version only":    "\x01",
		"other version":   "\x02" + good[1:],
		"meta too long":   "\x01\x00\x7f" + strings.Repeat("k", 40),
		"meta too short":  "\x01\x00\x10" + strings.Repeat("k", 40),
		"meta trailing":   good[:2] + string(rune(good[2]+1)) + good[3:],
		"huge count":      withMeta(key + "\x00" + strings.Repeat("\x00", 6) + "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
		"varint overflow": withMeta(key + strings.Repeat("\xff", 10) + "\x02"),
		"bad status":      withMeta(key + "\xd0\x0f"),
	}
	metaEnd := 3 + int(good[2]) // the body is the rest: cuts inside it are a shorter body
	for i := 1; i < metaEnd; i++ {
		cases[fmt.Sprintf("cut at %d", i)] = good[:i]
	}
	for name, s := range cases {
		if e, _, err := decodeEntry(s); !errors.Is(err, ErrCorrupt) || e != nil {
			t.Errorf("%s: %v, %v", name, e, err)
		}
	}
}

// TestDecodeBounded: counts above the bytes that follow are refused before
// anything is allocated for them.
func TestDecodeBounded(t *testing.T) {
	e := entry("a")
	e.Header = http.Header{}
	for i := range maxHeaderNames + 1 {
		e.Header[strings.Repeat("h", i+1)] = []string{""}
	}
	if _, _, err := decodeEntry(encoded(e)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%d header names accepted", len(e.Header))
	}
	e = entry("a")
	for range maxVary + 1 {
		e.Vary = append(e.Vary, "v")
	}
	if _, _, err := decodeEntry(encoded(e)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%d Vary names accepted", len(e.Vary))
	}
}

func FuzzDecodeEntry(f *testing.F) {
	full := entry("full", "a", "b")
	full.Vary = []string{"accept"}
	full.Meta = httpcache.Meta{ResponseTime: time.Unix(1700000000, 5), Lifetime: time.Minute, NoCache: true}
	f.Add([]byte(encoded(full)))
	f.Add([]byte(encoded(&httpcache.Entry{Vary: []string{"accept"}, TTL: time.Hour})))
	f.Add([]byte(encoded(entry("plain"))))
	f.Add([]byte{})
	f.Add([]byte{formatV1})
	f.Add([]byte("\x01\xff" + strings.Repeat("\xff", 64)))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, storedAt, err := decodeEntry(string(data))
		if err != nil {
			return
		}
		// Whatever decodes encodes again to a value that decodes to the
		// same entry.
		again, storedAgain, err := decodeEntry(string(appendEntry(nil, e, storedAt)))
		if err != nil {
			t.Fatalf("re-encoded entry refused: %v", err)
		}
		if !reflect.DeepEqual(e, again) || !storedAt.Equal(storedAgain) {
			t.Fatalf("round trip differs:\n%+v\n%+v", e, again)
		}
	})
}
