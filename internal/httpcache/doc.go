// Package httpcache holds the decisions of a shared HTTP cache as RFC 9111
// describes them (with the stale-while-revalidate and stale-if-error
// extensions of RFC 5861), plus a bounded in-memory store and a bounded
// request-coalescing helper, so that the cache plugin is thin wiring.
//
// The decision functions are pure and deterministic: the current time is
// always passed in, never read from the clock inside the logic. Only the
// MemoryStore (entry expiry) and Group (wait timeout) keep time themselves.
//
// The pieces:
//
//   - ParseCacheControl parses Cache-Control field values into a
//     CacheControl value without allocating.
//   - Storable decides whether a response may be stored (RFC 9111 §3) under
//     a route Policy.
//   - Freshness computes a stored response's freshness lifetime and its
//     corrected initial age (§4.2); Meta.Age gives the current age at a time.
//   - Decide chooses what to do with a stored response for a request
//     (§4.2, §4.2.4, §5.2.1, RFC 5861): serve it fresh, serve it stale and
//     revalidate in the background, revalidate first, go to the origin, or
//     answer 504 for only-if-cached.
//   - VaryNames and SecondaryKey build the secondary cache key (§4.1).
//   - AddValidators, Update304, NotModified and NotModifiedHeader handle
//     conditional requests (§4.3, RFC 9110 §13).
//   - NewKey builds the fixed-size primary key from method, scheme, host,
//     normalised path, canonical query and extra parts.
//   - StoredHeader drops the fields a cache never stores (§3.1); AgeValue
//     formats the Age header of a served entry (§5.1), ServeHeader writes
//     the stored fields and Age.
//   - Invalidates and InvalidationTargets say which stored responses an
//     unsafe request's response invalidates (§4.4).
//   - VariantKey combines a primary key with a secondary key.
//   - Store is the storage contract; MemoryStore is its bounded in-memory
//     implementation.
//   - Group coalesces concurrent misses for one key with a bound on waiters
//     and on the time a waiter waits.
//
// A cache uses them in this order (TestFlow walks it):
//
//  1. key := NewKey(r, opts, extra); look up key in the Store. An Entry with
//     Vary names leads to VariantKey(key, SecondaryKey(names, r.Header)).
//  2. Decide(&entry.Meta, &reqCC, now) with reqCC := RequestCacheControl:
//     Fresh and StaleOK serve (ServeHeader; NotModified answers a client's
//     conditional request with 304 and NotModifiedHeader); StaleRevalidate
//     serves and revalidates in the background; Revalidate forwards with
//     AddValidators and, on a 304 that Selects304, stores Update304's result;
//     on an error, Meta.StaleIfErrorAllowed may serve the entry; Miss
//     forwards (coalesced through Group); GatewayTimeout answers 504.
//  3. On a response, Storable decides; Freshness gives the Meta, StoredHeader
//     the header; Store.Set keeps it for Entry.TTL.
//  4. An unsafe method's response that Invalidates purges the
//     InvalidationTargets.
package httpcache
