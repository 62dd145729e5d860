// Command backend is the upstream used by the Portico load-test harness
// (bench/run.sh). It answers every request, whatever its method or path, with
// status 200 and exactly 100 bytes of body, keeping connections alive, so that
// the proxies under test are measured on their own overhead and not on the
// backend's work.
//
// Three paths answer differently, for the cache and compression table:
//
//	/cacheable  the same 100 bytes with Cache-Control: public, max-age=3600
//	/no-store   the same 100 bytes with Cache-Control: no-store
//	/json-16k   a 16,384-byte JSON document (Content-Type: application/json),
//	            a list of product records with varied values, built once at
//	            start from a fixed seed, so every response is the same
//
// Usage:
//
//	backend -addr 127.0.0.1:28080
package main

import (
	"bytes"
	"flag"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// bodySize is the exact size of every response body but /json-16k's.
const bodySize = 100

// jsonSize is the exact size of /json-16k's body.
const jsonSize = 16 << 10

// reply is one prepared response: its header values and body.
type reply struct {
	contentType  []string
	length       []string
	cacheControl []string // nil: no Cache-Control
	body         []byte
}

func (p *reply) serve(w http.ResponseWriter) {
	hd := w.Header()
	hd["Content-Type"] = p.contentType
	hd["Content-Length"] = p.length
	if p.cacheControl != nil {
		hd["Cache-Control"] = p.cacheControl
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(p.body)
}

func newReply(contentType, cacheControl string, body []byte) *reply {
	p := &reply{contentType: []string{contentType}, length: []string{strconv.Itoa(len(body))}, body: body}
	if cacheControl != "" {
		p.cacheControl = []string{cacheControl}
	}
	return p
}

func main() {
	addr := flag.String("addr", "127.0.0.1:28080", "host:port to listen on")
	flag.Parse()

	body := bytes.Repeat([]byte("x"), bodySize-1)
	body = append(body, '\n')
	plain := newReply("text/plain", "", body)
	cacheable := newReply("text/plain", "public, max-age=3600", body)
	noStore := newReply("text/plain", "no-store", body)
	doc := newReply("application/json", "", jsonDocument(jsonSize))

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Drain any request body so the connection can be reused.
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		switch r.URL.Path {
		case "/cacheable":
			cacheable.serve(w)
		case "/no-store":
			noStore.serve(w)
		case "/json-16k":
			doc.serve(w)
		default:
			plain.serve(w)
		}
	})

	srv := &http.Server{
		Addr:              *addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	log.Printf("backend listening on %s (%d-byte responses; /json-16k: %d bytes)", *addr, bodySize, jsonSize)
	log.Fatal(srv.ListenAndServe())
}

// jsonDocument is a JSON object of exactly size bytes: {"items":[...]},
// product records with ids, SKUs, names, prices, stock, ratings, tags and
// timestamps drawn from a fixed seed (an API response as it compresses in
// practice, not a repeated string), padded with spaces before the final
// brace.
func jsonDocument(size int) []byte {
	var (
		adjectives = []string{"Ergonomic", "Rustic", "Compact", "Wireless", "Refurbished", "Organic", "Heavy-duty", "Foldable", "Smart", "Vintage"}
		materials  = []string{"Steel", "Oak", "Cotton", "Granite", "Bamboo", "Leather", "Aluminium", "Ceramic", "Glass", "Wool"}
		products   = []string{"Chair", "Desk Lamp", "Backpack", "Kettle", "Headphones", "Bookshelf", "Water Bottle", "Keyboard", "Blanket", "Planter"}
		categories = []string{"furniture", "lighting", "bags", "kitchen", "audio", "storage", "outdoor", "computers", "home", "garden"}
		tags       = []string{"new", "sale", "eco", "bestseller", "limited", "gift", "bundle", "clearance"}
		sellers    = []string{"Nordic Supplies", "Acme Trading", "Blue Harbor Goods", "Lumen & Co", "Greenfield Retail", "Atlas Wholesale"}
		currencies = []string{"EUR", "USD", "GBP"}
	)
	rng := rand.New(rand.NewPCG(2026, 12))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	out := []byte(`{"items":[`)
	var item []byte
	for i := 0; ; i++ {
		item = item[:0]
		if i > 0 {
			item = append(item, ',')
		}
		item = append(item, `{"id":`...)
		item = strconv.AppendInt(item, int64(100000+rng.IntN(900000)), 10)
		item = append(item, `,"sku":"SKU-`...)
		item = strconv.AppendUint(item, rng.Uint64()&0xffffff|0x100000, 16)
		item = append(item, `","name":"`...)
		item = append(item, pick(adjectives)+" "+pick(materials)+" "+pick(products)...)
		item = append(item, `","category":"`...)
		item = append(item, pick(categories)...)
		item = append(item, `","price":`...)
		item = strconv.AppendFloat(item, float64(199+rng.IntN(99800))/100, 'f', 2, 64)
		item = append(item, `,"currency":"`...)
		item = append(item, pick(currencies)...)
		item = append(item, `","stock":`...)
		item = strconv.AppendInt(item, int64(rng.IntN(500)), 10)
		item = append(item, `,"rating":`...)
		item = strconv.AppendFloat(item, float64(10+rng.IntN(41))/10, 'f', 1, 64)
		item = append(item, `,"tags":["`...)
		item = append(item, pick(tags)...)
		item = append(item, `","`...)
		item = append(item, pick(tags)...)
		item = append(item, `"],"updated_at":"`...)
		item = base.Add(time.Duration(rng.Int64N(int64(330*24*time.Hour)))/time.Second*time.Second).AppendFormat(item, time.RFC3339)
		item = append(item, `","seller":{"id":`...)
		item = strconv.AppendInt(item, int64(1+rng.IntN(999)), 10)
		item = append(item, `,"name":"`...)
		item = append(item, pick(sellers)...)
		item = append(item, `"}}`...)
		if len(out)+len(item)+len("]}") > size {
			break
		}
		out = append(out, item...)
	}
	out = append(out, ']')
	for len(out) < size-1 {
		out = append(out, ' ')
	}
	return append(out, '}')
}
