// Package httpcache holds the decisions of a shared HTTP cache as RFC 9111
// describes them (with the stale-while-revalidate and stale-if-error
// extensions of RFC 5861), plus a bounded in-memory store and a bounded
// request-coalescing helper, so that the cache plugin is thin wiring.
//
// Everything here is pure and deterministic: the current time is always
// passed in, never read from the clock inside the logic.
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
//     formats the Age header of a served entry (§5.1).
//   - Invalidates and InvalidationTargets say which stored responses an
//     unsafe request's response invalidates (§4.4).
//   - VariantKey combines a primary key with a secondary key.
//   - Store is the storage contract; MemoryStore is its bounded in-memory
//     implementation.
//   - Group coalesces concurrent misses for one key with a bound on waiters
//     and on the time a waiter waits.
package httpcache
