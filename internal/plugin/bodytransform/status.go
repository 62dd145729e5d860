package bodytransform

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// statusTable is a set of HTTP statuses (100–599).
type statusTable [10]uint64

func (t *statusTable) add(code int) { t[code/64] |= 1 << (code % 64) }

func (t *statusTable) has(code int) bool {
	return code >= 0 && code < 600 && t[code/64]&(1<<(code%64)) != 0
}

// addClass adds the class whose first code is first (200 for 2xx).
func (t *statusTable) addClass(first int) { forRange(first, t.add) }

// forRange calls f for each code of the class whose first code is first.
func forRange(first int, f func(int)) {
	for c := first; c < first+100; c++ {
		f(c)
	}
}

// neverTransformed: responses without a (whole) body.
func neverTransformed(code int) bool {
	return code == http.StatusNoContent || code == http.StatusPartialContent || code == http.StatusNotModified
}

// neverMapped: interim responses and 304 pass unchanged.
func neverMapped(code int) bool { return code < 200 || code == http.StatusNotModified }

// classOf parses "2xx" (any case) into 200.
func classOf(s string) (int, bool) {
	if len(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X') {
		return int(s[0]-'0') * 100, true
	}
	return 0, false
}

// parseStatus parses a status code or a class; class is true for a class,
// whose first code is returned.
func parseStatus(s string) (code int, class bool, err error) {
	s = strings.TrimSpace(s)
	if first, ok := classOf(s); ok {
		return first, true, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, false, fmt.Errorf("%q is neither a status 100–599 nor a class such as 5xx", s)
	}
	return n, false, nil
}

// maxMappings bounds status_map (its index is a uint8).
const maxMappings = 200

// mapping is one compiled status_map entry.
type mapping struct {
	to          int
	body        []byte
	contentType []string
	length      []string
	hasBody     bool
}

// compileStatuses builds the set of statuses whose bodies are transformed.
func compileStatuses(list []string) (statusTable, error) {
	var t statusTable
	if len(list) == 0 {
		t.addClass(200)
	}
	var errs []error
	for i, s := range list {
		code, class, err := parseStatus(s)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("response.statuses[%d]: %v", i, err))
		case class:
			t.addClass(code)
		case code < 200 || neverTransformed(code):
			errs = append(errs, fmt.Errorf("response.statuses[%d]: %d responses are never transformed (no body, or a partial one)", i, code))
		default:
			t.add(code)
		}
	}
	return t, errors.Join(errs...)
}

// compileStatusMap builds the status_map index and the constant bodies.
func (b *BodyTransform) compileStatusMap() []error {
	if len(b.StatusMap) > maxMappings {
		return []error{fmt.Errorf("status_map has %d entries; at most %d", len(b.StatusMap), maxMappings)}
	}
	var errs []error
	var exact, classes statusTable
	for i, m := range b.StatusMap {
		field := fmt.Sprintf("status_map[%d]", i)
		code, class, err := parseStatus(m.From)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.from: %v", field, err))
			continue
		}
		seen := &exact
		if class {
			seen = &classes
		}
		switch {
		case class && code == 100, !class && neverMapped(code):
			errs = append(errs, fmt.Errorf("%s.from: %s cannot be mapped (1xx and 304 responses pass unchanged)", field, m.From))
			continue
		case seen.has(code):
			errs = append(errs, fmt.Errorf("%s.from: %s is mapped twice", field, m.From))
			continue
		}
		seen.add(code)
		mp, err := compileMapping(m)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%v", field, err))
			continue
		}
		b.mappings = append(b.mappings, mp)
		idx := uint8(len(b.mappings))
		if class {
			forRange(code, func(c int) {
				if !exact.has(c) && b.mapIndex[c] == 0 && !neverMapped(c) {
					b.mapIndex[c] = idx
				}
			})
		} else {
			b.mapIndex[code] = idx
		}
	}
	return errs
}

// compileMapping checks one entry and prepares its headers and body.
func compileMapping(m StatusMapping) (mapping, error) {
	mp := mapping{to: m.To, hasBody: m.Body != ""}
	if m.To < 200 || m.To > 599 {
		return mp, fmt.Errorf("to must be a status 200–599, e.g. 200; got %d", m.To)
	}
	if !mp.hasBody {
		if m.ContentType != "" {
			return mp, errors.New("content_type: needs a body")
		}
		return mp, nil
	}
	if m.To == http.StatusNoContent || m.To == http.StatusNotModified {
		return mp, fmt.Errorf("body: a %d response has no body", m.To)
	}
	ct := m.ContentType
	if ct == "" {
		ct = contentTypeJSON
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil || strings.ContainsAny(ct, "\r\n\x00") {
		return mp, fmt.Errorf("content_type: %q is not a media type, e.g. application/json", ct)
	}
	if isJSON(ct) {
		if _, err := decodeJSON([]byte(m.Body)); err != nil {
			return mp, fmt.Errorf("body: not valid JSON (content_type is %s), e.g. '{\"items\": []}'", ct)
		}
	}
	mp.body = []byte(m.Body)
	mp.contentType = []string{ct}
	mp.length = []string{strconv.Itoa(len(m.Body))}
	return mp, nil
}
