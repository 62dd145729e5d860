package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/portico-gw/portico/internal/control"
	"github.com/portico-gw/portico/internal/plugin"
)

// purgeTimeout bounds one admin purge of every cache.
const purgeTimeout = time.Minute

// PurgeCache removes stored responses from the caches of the running
// snapshot (plugins that implement plugin.Purger): those of every route,
// or of p.Route only. It is no config change: nothing is written and no
// revision is made. Stores outlive reloads, so what it removes is gone for
// the snapshots before and after it as well; a store shared by several
// nodes is purged for all of them.
func (g *Gateway) PurgeCache(ctx context.Context, p control.CachePurge) (control.CachePurgeResult, error) {
	res := control.CachePurgeResult{Routes: []string{}}
	s := g.Runtime.acquire()
	if s == nil {
		return res, errors.New("no configuration loaded")
	}
	defer g.Runtime.unref(s)
	if pe := p.Check(); pe != nil {
		return res, pe
	}
	if p.Route != "" && !s.hasRoute(p.Route) {
		return res, &control.PurgeError{Field: "route", NotFound: true, Msg: "route " + strconv.Quote(p.Route) + " not found"}
	}
	// A purge that started runs to its end, even when the admin client
	// goes away, within purgeTimeout (a shared store may be slow).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), purgeTimeout)
	defer cancel()
	req := plugin.PurgeRequest{All: p.All, URL: p.URL, Prefix: p.Prefix, Tag: p.Tag}
	var errs []error
	for _, in := range s.instances {
		pg, ok := in.Plugin.(plugin.Purger)
		if !ok || (p.Route != "" && in.Route != p.Route) {
			continue
		}
		if !slices.Contains(res.Routes, in.Route) {
			res.Routes = append(res.Routes, in.Route)
		}
		n, err := pg.Purge(ctx, req)
		res.Purged += n
		if ie, ok := errors.AsType[*plugin.PurgeInputError](err); ok {
			return res, &control.PurgeError{Field: ie.Field, Msg: ie.Err.Error()}
		}
		if err != nil {
			// Purge the other routes' stores all the same: a purge is
			// safe to repeat once the failing store is back.
			errs = append(errs, fmt.Errorf("route %s: %w", strconv.Quote(in.Route), err))
		}
	}
	if p.Route != "" && len(res.Routes) == 0 {
		return res, &control.PurgeError{Field: "route", Msg: "route " + strconv.Quote(p.Route) + " has no cache"}
	}
	g.adminLogger().Info("admin: cache purged", "kind", req.Kind(), "route", p.Route, "purged", res.Purged, "routes", len(res.Routes))
	if err := errors.Join(errs...); err != nil {
		g.adminLogger().Error("admin: cache purge failed", "error", err)
		return res, err
	}
	return res, nil
}

// hasRoute reports whether the snapshot's config has a route of that name.
func (s *Snapshot) hasRoute(name string) bool {
	for _, r := range s.cfg.Routes {
		if r.Name == name {
			return true
		}
	}
	return false
}
