package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/magnetar/magnetar/results"
)

// ErrNoTarget: neither a service URL nor an in-process standalone node
// (Options.Standalone) was given, so there is nothing to run against.
var ErrNoTarget = errors.New("bench: no target: no service URL given and no in-process standalone node available")

// Target is what a benchmark runs against: an in-process standalone node
// (the default, started by Options.Standalone) or a cluster that is already
// up (URLTarget).
type Target interface {
	// Start brings the target up and says how to reach it. For a cluster
	// that is already running it only checks the addresses.
	Start(ctx context.Context) (Endpoint, error)
	// Stop shuts down what Start started; it is called once, after the
	// last run, also when Start failed.
	Stop(ctx context.Context) error
	// Info describes the target for the result files.
	Info() TargetInfo
}

// Endpoint is how to reach a started target.
type Endpoint struct {
	// ServiceURL is the Pulsar service URL, pulsar://host:6650.
	ServiceURL string
	// AdminURL is the HTTP admin service, http://host:8080; partitioned
	// topics are created through it. Empty: the broker must create
	// partitioned topics on its own (or CreateTopic is set).
	AdminURL string
	// CreateTopic, when set, creates a partitioned topic instead of the
	// admin API (an in-process node may do it directly).
	CreateTopic func(ctx context.Context, topic string, partitions int) error
}

// TargetInfo describes a target.
type TargetInfo struct {
	// Name is recorded as the result's target: TargetStandalone, or the
	// service URL.
	Name string
	// Durability states how durable an acknowledged message is there.
	Durability results.Durability
	// InProcess: the target runs in this process, so the process's CPU
	// accounting covers it (and the load generator).
	InProcess bool
	// Remote: the target runs on other machines, so this machine's limits
	// do not bound it.
	Remote bool
}

// URLTarget is a cluster that is already running, reached by its service
// URL. It starts and stops nothing.
type URLTarget struct {
	ServiceURL string
	// AdminURL is the HTTP admin service used to create partitioned topics
	// (PUT /admin/v2/{persistent|non-persistent}/{tenant}/{ns}/{topic}/partitions).
	AdminURL string
	// Durability is what the cluster promises, as the person running the
	// benchmark states it; a remote cluster cannot be asked. Zero means
	// "unknown".
	Durability results.Durability
	// HTTPClient calls the admin API; nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// Start checks the URLs.
func (t *URLTarget) Start(ctx context.Context) (Endpoint, error) {
	if err := checkServiceURL(t.ServiceURL); err != nil {
		return Endpoint{}, err
	}
	ep := Endpoint{ServiceURL: t.ServiceURL, AdminURL: t.AdminURL}
	if t.AdminURL != "" {
		u, err := url.Parse(t.AdminURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return Endpoint{}, fmt.Errorf("bench: admin URL %q: want http://host:port", t.AdminURL)
		}
		ep.CreateTopic = AdminTopicCreator(t.AdminURL, t.HTTPClient)
	}
	return ep, nil
}

// Stop does nothing: the cluster was not started here.
func (t *URLTarget) Stop(context.Context) error { return nil }

// Info names the target by its URL; it is remote unless the URL's host is
// a loopback address.
func (t *URLTarget) Info() TargetInfo {
	d := t.Durability
	if d == (results.Durability{}) {
		d.Level = "unknown"
		d.Description = "a cluster reached by URL: its durability was not stated (--durability)"
	}
	return TargetInfo{Name: t.ServiceURL, Durability: d, Remote: !isLoopbackURL(t.ServiceURL)}
}

func checkServiceURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "pulsar" && u.Scheme != "pulsar+ssl") || u.Host == "" {
		return fmt.Errorf("bench: service URL %q: want pulsar://host:port", s)
	}
	return nil
}

// isLoopbackURL reports whether every host of a service URL (which may list
// several, comma-separated) is a loopback address or "localhost".
func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	for _, hp := range strings.Split(u.Host, ",") {
		host := hp
		if h, _, err := net.SplitHostPort(hp); err == nil {
			host = h
		}
		if host == "localhost" {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// AdminTopicCreator returns a function that creates partitioned topics
// through Pulsar's admin REST API at adminURL (PUT
// /admin/v2/<domain>/<tenant>/<namespace>/<topic>/partitions with the
// partition count as the body). A nil client means one with a 30 s timeout.
func AdminTopicCreator(adminURL string, client *http.Client) func(ctx context.Context, topic string, partitions int) error {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimRight(adminURL, "/")
	return func(ctx context.Context, topic string, partitions int) error {
		path, err := adminTopicPath(topic)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/admin/v2/"+path+"/partitions",
			strings.NewReader(strconv.Itoa(partitions)))
		if err != nil {
			return fmt.Errorf("bench: create topic %s: %w", topic, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("bench: create topic %s: %w", topic, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("bench: create topic %s: %s %s: %s", topic, req.Method, req.URL, strings.TrimSpace(resp.Status+" "+string(body)))
		}
		return nil
	}
}

// adminTopicPath turns persistent://tenant/ns/name (or tenant/ns/name, or
// name) into persistent/tenant/ns/name, with each part path-escaped.
func adminTopicPath(topic string) (string, error) {
	domain, rest := "persistent", topic
	if d, r, ok := strings.Cut(topic, "://"); ok {
		domain, rest = d, r
	}
	if domain != "persistent" && domain != "non-persistent" {
		return "", fmt.Errorf("bench: topic %q: unknown domain %q", topic, domain)
	}
	parts := strings.Split(rest, "/")
	switch len(parts) {
	case 1:
		parts = []string{"public", "default", parts[0]}
	case 3:
	default:
		return "", fmt.Errorf("bench: topic %q: want tenant/namespace/name", topic)
	}
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("bench: topic %q: empty name part", topic)
		}
		parts[i] = url.PathEscape(p)
	}
	return domain + "/" + strings.Join(parts, "/"), nil
}
