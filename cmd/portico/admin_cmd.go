package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// defaultAdmin is the admin listener's default address.
const defaultAdmin = "http://127.0.0.1:9901"

// adminClient calls a running gateway's admin API.
type adminClient struct {
	base, token string
	http        *http.Client
}

// adminFlags parses --admin and --token (default $PORTICO_ADMIN_TOKEN).
func adminFlags(name string, args []string, stderr io.Writer) (*adminClient, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("admin", defaultAdmin, "admin API base URL")
	token := fs.String("token", os.Getenv("PORTICO_ADMIN_TOKEN"), "admin token (default $PORTICO_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	b := strings.TrimSuffix(*base, "/")
	if !strings.Contains(b, "://") {
		b = "http://" + b
	}
	return &adminClient{base: b, token: *token, http: &http.Client{Timeout: 10 * time.Second}}, true
}

// get fetches path and decodes the JSON answer into v.
func (c *adminClient) get(path string, v any) error {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s (%d)", http.MethodGet, path, e.Error, resp.StatusCode)
		}
		return fmt.Errorf("%s %s: %s", http.MethodGet, path, resp.Status)
	}
	return json.Unmarshal(body, v)
}

// routeRow is the part of a route the table shows.
type routeRow struct {
	Name  string `json:"name"`
	Match struct {
		Hosts      []string `json:"hosts"`
		Path       string   `json:"path"`
		PathPrefix string   `json:"path_prefix"`
		PathRegex  string   `json:"path_regex"`
		Methods    []string `json:"methods"`
	} `json:"match"`
	Upstream string `json:"upstream"`
	Split    *struct {
		Variants []struct {
			Upstream string  `json:"upstream"`
			Weight   float64 `json:"weight"`
		} `json:"variants"`
	} `json:"split"`
	Versions *struct {
		List []struct {
			Name     string `json:"name"`
			Upstream string `json:"upstream"`
		} `json:"list"`
	} `json:"versions"`
	Respond *struct {
		Status int `json:"status"`
	} `json:"respond"`
	Redirect *struct {
		Status int    `json:"status"`
		URL    string `json:"url"`
		Host   string `json:"host"`
		Path   string `json:"path"`
	} `json:"redirect"`
	Plugins []struct {
		Name string `json:"name"`
	} `json:"plugins"`
}

func orStar(s []string) string {
	if len(s) == 0 {
		return "*"
	}
	return strings.Join(s, ",")
}

func (r routeRow) path() string {
	m := r.Match
	switch {
	case m.Path != "":
		return m.Path
	case m.PathPrefix != "":
		return "prefix " + m.PathPrefix
	case m.PathRegex != "":
		return "regex " + m.PathRegex
	}
	return "*"
}

func (r routeRow) action() string {
	switch {
	case r.Upstream != "":
		return "upstream " + r.Upstream
	case r.Split != nil:
		parts := make([]string, len(r.Split.Variants))
		for i, v := range r.Split.Variants {
			parts[i] = fmt.Sprintf("%s %g", v.Upstream, v.Weight)
		}
		return "split " + strings.Join(parts, ", ")
	case r.Versions != nil:
		parts := make([]string, len(r.Versions.List))
		for i, v := range r.Versions.List {
			parts[i] = v.Name + " " + v.Upstream
		}
		return "versions " + strings.Join(parts, ", ")
	case r.Respond != nil:
		return fmt.Sprintf("respond %d", r.Respond.Status)
	case r.Redirect != nil:
		to := r.Redirect.URL
		if to == "" {
			to = r.Redirect.Host + r.Redirect.Path
		}
		return strings.TrimSpace(fmt.Sprintf("redirect %d %s", r.Redirect.Status, to))
	}
	return "-"
}

func (r routeRow) plugins() string {
	names := make([]string, len(r.Plugins))
	for i, p := range r.Plugins {
		names[i] = p.Name
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

// cmdRoutes prints the running routes as a table.
func cmdRoutes(args []string, stdout, stderr io.Writer) int {
	c, ok := adminFlags("routes", args, stderr)
	if !ok {
		return 2
	}
	var body struct {
		Routes []routeRow `json:"routes"`
	}
	if err := c.get("/routes", &body); err != nil {
		fmt.Fprintf(stderr, "routes: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHOSTS\tPATH\tMETHODS\tACTION\tPLUGINS")
	for _, r := range body.Routes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, orStar(r.Match.Hosts), r.path(), orStar(r.Match.Methods), r.action(), r.plugins())
	}
	_ = tw.Flush()
	return 0
}

// cmdUpstreams prints each upstream target's health as a table.
func cmdUpstreams(args []string, stdout, stderr io.Writer) int {
	c, ok := adminFlags("upstreams", args, stderr)
	if !ok {
		return 2
	}
	var body struct {
		Upstreams []struct {
			Name    string `json:"name"`
			Targets []struct {
				URL      string `json:"url"`
				Weight   int    `json:"weight"`
				Healthy  bool   `json:"healthy"`
				Ejected  bool   `json:"ejected"`
				InFlight int64  `json:"in_flight"`
			} `json:"targets"`
		} `json:"upstreams"`
	}
	if err := c.get("/upstreams", &body); err != nil {
		fmt.Fprintf(stderr, "upstreams: %v\n", err)
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tTARGET\tWEIGHT\tSTATE\tIN-FLIGHT")
	for _, u := range body.Upstreams {
		for _, t := range u.Targets {
			state := "healthy"
			switch {
			case t.Ejected:
				state = "ejected"
			case !t.Healthy:
				state = "unhealthy"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\n", u.Name, t.URL, t.Weight, state, t.InFlight)
		}
	}
	_ = tw.Flush()
	return 0
}
