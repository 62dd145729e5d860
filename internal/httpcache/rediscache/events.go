package rediscache

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/portico-gw/portico/internal/httpcache"
)

// Kinds of event messages. A message is the kind byte, the sending
// store's 8-byte id and the value: the raw 32-byte key of a delete, the
// URL, prefix or tag of a purge, nothing for a purge of everything.
const (
	kindDelete = 'd'
	kindAll    = 'a'
	kindURL    = 'u'
	kindPrefix = 'p'
	kindTag    = 't'
)

func purgeKind(p httpcache.Purge) (byte, string, bool) {
	n := 0
	var kind byte
	var value string
	if p.All {
		n, kind = n+1, kindAll
	}
	if p.URL != "" {
		n, kind, value = n+1, kindURL, p.URL
	}
	if p.Prefix != "" {
		n, kind, value = n+1, kindPrefix, p.Prefix
	}
	if p.Tag != "" {
		n, kind, value = n+1, kindTag, p.Tag
	}
	return kind, value, n == 1
}

func (s *Store) message(kind byte, value string) []byte {
	b := make([]byte, 0, 1+len(s.node)+len(value))
	b = append(b, kind)
	b = append(b, s.node[:]...)
	return append(b, value...)
}

// subscribe listens on the events channel and applies other nodes'
// deletes and purges to the front. go-redis reconnects a broken
// subscription by itself; messages sent meanwhile are lost, so every
// subscription after the first empties the front (FrontMaxTTL bounds what
// a lost message can cost when even that is missed).
func (s *Store) subscribe() {
	s.sub = s.rdb.Subscribe(context.Background(), s.channel)
	s.subDone = make(chan struct{})
	ch := s.sub.ChannelWithSubscriptions(redis.WithChannelHealthCheckInterval(5 * time.Second))
	go func() {
		defer close(s.subDone)
		subscribed := false
		for m := range ch {
			switch m := m.(type) {
			case *redis.Subscription:
				if m.Kind != "subscribe" {
					continue
				}
				if subscribed {
					_, _ = s.front.Purge(context.Background(), httpcache.Purge{All: true})
				}
				subscribed = true
			case *redis.Message:
				s.apply(m.Payload)
			}
		}
	}()
}

// apply applies one event message to the front; it ignores the store's own
// messages and malformed ones.
func (s *Store) apply(msg string) {
	if len(msg) < 1+len(s.node) || msg[1:1+len(s.node)] == string(s.node[:]) {
		return
	}
	kind, value := msg[0], msg[1+len(s.node):]
	ctx := context.Background()
	switch kind {
	case kindDelete:
		var k httpcache.Key
		if len(value) == len(k) {
			copy(k[:], value)
			_ = s.front.Delete(ctx, k)
		}
	case kindAll:
		_, _ = s.front.Purge(ctx, httpcache.Purge{All: true})
	case kindURL:
		_, _ = s.front.Purge(ctx, httpcache.Purge{URL: value})
	case kindPrefix:
		_, _ = s.front.Purge(ctx, httpcache.Purge{Prefix: value})
	case kindTag:
		_, _ = s.front.Purge(ctx, httpcache.Purge{Tag: value})
	}
}
