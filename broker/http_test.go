package broker

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// adminPaths are the admin API's resources, for the fuzzer to pick from.
var adminPaths = []string{
	"/admin/v2/clusters/standalone",
	"/admin/v2/tenants/t1",
	"/admin/v2/namespaces/t1/ns",
	"/admin/v2/namespaces/public/default",
	"/admin/v2/namespaces/public/default/retention",
	"/admin/v2/namespaces/public/default/backlogQuota",
	"/admin/v2/namespaces/public/default/deduplication",
	"/admin/v2/namespaces/public/default/messageTTL",
	"/admin/v2/namespaces/public/default/autoTopicCreation",
	"/admin/v2/persistent/public/default/t",
	"/admin/v2/persistent/public/default/t/partitions",
	"/admin/v2/persistent/public/default/t/subscription/s",
	"/admin/v2/persistent/public/default/t/subscription/s/resetcursor",
	"/admin/v2/persistent/public/default/t/subscription/s/skip/3",
	"/admin/v2/persistent/public/default/t/subscription/s/position/1",
	"/admin/v2/persistent/public/default/t/stats",
	"/admin/v2/persistent/public/default/t/internalStats",
	"/admin/v2/non-persistent/public/default/t/partitions",
	"/admin/v2/schemas/public/default/t/schema",
}

// FuzzAdminRequests sends arbitrary bodies (and paths) to the admin API:
// whatever they hold, the answer is never a 5xx and never a crash.
//
//	go test -run '^$' -fuzz FuzzAdminRequests -fuzztime 60s ./broker/
func FuzzAdminRequests(f *testing.F) {
	w := newWorld(f)
	b := w.start()
	mux := http.NewServeMux()
	b.RegisterHTTP(mux)
	srv := httptest.NewServer(mux)
	f.Cleanup(srv.Close)
	for i := range adminPaths {
		for _, body := range []string{"", "null", "{}", "3", `{"partitions":2}`, `{"ledgerId":1,"entryId":0}`,
			`{"retentionTimeInMinutes":5,"retentionSizeInMB":-1}`, `{"limitSize":1,"policy":"producer_exception"}`,
			`{"type":"JSON","schema":"{}"}`, `{"adminRoles":["a"],"allowedClusters":["standalone"]}`, "true", "[1,2"} {
			f.Add(uint8(i), uint8(i+len(body)), "", body)
		}
	}
	f.Add(uint8(0), uint8(1), "/../x%2F%00", "{")
	methods := []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete}
	f.Fuzz(func(t *testing.T, path, method uint8, suffix, body string) {
		p := adminPaths[int(path)%len(adminPaths)] + suffix
		if strings.ContainsAny(p, " \r\n\t#?") {
			return
		}
		req, err := http.NewRequest(methods[int(method)%len(methods)], srv.URL+p, bytes.NewBufferString(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", req.Method, p, body, resp.StatusCode, data)
		}
	})
}
