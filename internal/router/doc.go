// Package router compiles route definitions into an immutable lookup table and
// normalises request hosts and paths before they are matched.
//
// A Table is built once per configuration snapshot by Build and is safe for
// concurrent use. Match does not allocate, and its cost depends on the shape of
// the request (number of host labels and path segments), not on the number of
// routes: hosts are looked up in maps and paths walk a segment trie whose wide
// levels are maps.
//
// # Path normalisation policy
//
// NormalizePath turns the still-encoded path of the request line into the one
// canonical form that routes are matched against (and that should be sent
// upstream), so that two spellings of a path can never reach different routes
// or slip past a prefix:
//
//   - The path must start with "/". Raw control bytes (below 0x20 and 0x7F),
//     raw space, raw "\", raw "?" and raw "#" are rejected, as is malformed
//     percent-encoding ("%zz", a truncated "%4").
//   - Percent-encoded unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~")
//     are decoded: "/%61dmin" is "/admin" and "%2e%2e" is "..". Every other
//     escape stays encoded with upper-case hex ("%c3%a9" becomes "%C3%A9"), and
//     raw bytes that are not allowed in a path segment (non-ASCII, `"<>[]^{|}`
//     and the back quote) are encoded the same way. Reserved characters are
//     never decoded, since "%21" and "!" are different per RFC 3986.
//   - Encoded "/", "\", NUL, ";", "%", "?" and "#" (%2F %5C %00 %3B %25 %3F
//     %23) stay encoded as a literal part of their segment; encodedSpecial
//     reports that the result contains one, so the caller can refuse the
//     request unless the route allows it. "/admin/..%2fsecret" is therefore the
//     single segment "..%2Fsecret" below "/admin", never a dot segment.
//   - Runs of slashes merge into one ("//admin" is "/admin").
//   - Dot segments are removed after decoding, as in RFC 3986 section 5.2.4,
//     and ".." never climbs above the root ("/../x" is "/x"). A final "." or
//     ".." leaves a trailing slash ("/a/b/.." is "/a/").
//   - Any other trailing slash is kept: "/users/" and "/users" are different
//     paths.
//   - A dot segment carrying a path parameter ("..;", ".;x", also encoded
//     as "%2e%2e;") is rejected: servlet containers strip the parameter and
//     would resolve it as "..".
//
// A path that is already canonical is returned as is, without allocating.
//
// # Host matching
//
// NormalizeHost lower-cases the Host header and strips the port and any
// trailing dot. A route's hosts are exact names ("api.example.com"), wildcards
// ("*.example.org", matching one or more labels below example.org but not
// example.org itself), or absent (any host). A request is matched first
// against the routes of its exact host, then against each wildcard bucket from
// the longest matching suffix to the shortest, then against the routes without
// hosts. A bucket is only left for the next, less specific one when none of its
// routes matches the request at all, so a host-specific route always beats a
// route for any host, whatever their paths.
//
// # Precedence within a host bucket
//
// The most specific path condition wins:
//
//  1. Exact paths and templates ("path"). They are compared segment by
//     segment from the left: at the first segment where two candidates
//     differ, a static segment beats "{param}", which beats "{rest...}". A
//     fully static path therefore beats any template that also matches.
//  2. Prefixes ("path_prefix"), longest first. "/users/" is longer than
//     "/users". A route without a path condition counts as "path_prefix: /"
//     and ties with it.
//  3. Regular expressions ("path_regex"), higher priority first.
//
// Routes with the same path condition are ordered by the number of other
// conditions they carry (a method list counts as one, plus one per header and
// per query parameter), most first, then by higher Priority, then by Index
// (configuration order). Priority therefore only breaks ties between equally
// specific paths; it never lets a prefix beat an exact path.
//
// The first candidate in that order whose method, header and query conditions
// all hold is chosen. When none at the most specific path holds, matching
// backtracks to the next less specific candidate: with a "GET /users/{id}"
// route and a "path_prefix: /users" route, "POST /users/1" goes to the prefix
// route.
//
// # Conditions
//
//   - Path templates: "{name}" matches exactly one non-empty segment and
//     "{name...}", only as the last segment, matches the rest of the path (at
//     least one byte, slashes included). Captured values are the normalised
//     segments, still percent-encoded where they were. Static segments compare
//     byte for byte after normalisation; the trailing slash is significant.
//   - Prefixes match on segment boundaries: "/users" matches "/users",
//     "/users/" and "/users/1/x" but not "/usersx"; "/users/" matches
//     "/users/" and below but not "/users".
//   - path_regex is an RE2 expression matched against the whole normalised
//     path with MatchString, so it is unanchored: "/admin" also matches
//     "/x/admin/y". Anchor it with "^" and "$" to match the full path.
//   - Methods compare exactly and case-sensitively with the request method.
//     HEAD does not imply GET; list both when both are wanted.
//   - Headers must be present with exactly the given value, as
//     http.Header.Get reports it (the first value of the field).
//   - Query parameters must be present with exactly the given value after
//     query decoding ("+" is a space). As with url.Values.Get, the first
//     occurrence of a key decides, and pairs that url.ParseQuery would skip
//     (bad escapes, a ";") are skipped.
//
// Those are the rules of Match. The gateway uses MatchRequest, which does
// not guess what a backend will make of a repeated or malformed part: when
// a candidate route examined before the winner (or the winner) matches on a
// header the request repeats, or on a query parameter while the query holds
// that name twice (also in another ASCII case, or once encoded), a ";" or a
// malformed escape, the request is Ambiguous and is answered 400.
//
// # Path parameters
//
// A ";" in a segment starts a path parameter for servlet containers and
// similar backends ("/admin;x=1/secret" is "/admin/secret" to them).
// ApplyPathParams applies the server.path_params policy to a normalised path
// before matching: reject (400), strip (every parameter is removed and the
// stripped path is what is routed and forwarded) or allow.
package router
