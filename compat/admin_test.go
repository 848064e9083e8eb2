package compat_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
)

func TestAdminTenantsNamespaces(t *testing.T) {
	n := startNode(t)
	a := n.admin()
	clusters, err := a.Clusters().List()
	if err != nil || !slices.Equal(clusters, []string{"standalone"}) {
		t.Fatalf("clusters %v, %v", clusters, err)
	}
	cd, err := a.Clusters().Get("standalone")
	if err != nil || cd.BrokerServiceURL != n.url {
		t.Fatalf("cluster data %+v, %v", cd, err)
	}
	tenants, err := a.Tenants().List()
	if err != nil || !slices.Contains(tenants, "public") {
		t.Fatalf("tenants %v, %v", tenants, err)
	}
	if err := a.Tenants().Create(utils.TenantData{Name: "acme", AllowedClusters: []string{"standalone"}, AdminRoles: []string{"root"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Tenants().Create(utils.TenantData{Name: "acme"}); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("creating a tenant twice: %v", err)
	}
	td, err := a.Tenants().Get("acme")
	if err != nil || !slices.Equal(td.AdminRoles, []string{"root"}) {
		t.Fatalf("tenant %+v, %v", td, err)
	}
	if err := a.Namespaces().CreateNamespace("acme/ns1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Namespaces().CreateNsWithNumBundles("acme/ns2", 4); err != nil {
		t.Fatal(err)
	}
	if err := a.Namespaces().CreateNamespace("nosuch/ns"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("namespace in a missing tenant: %v", err)
	}
	nss, err := a.Namespaces().GetNamespaces("acme")
	if err != nil || !slices.Equal(nss, []string{"acme/ns1", "acme/ns2"}) {
		t.Fatalf("namespaces %v, %v", nss, err)
	}
	pol, err := a.Namespaces().GetPolicies("acme/ns2")
	if err != nil {
		t.Fatal(err)
	}
	if pol.Bundles == nil || pol.Bundles.NumBundles != 4 {
		t.Fatalf("policies %+v", pol)
	}
	// Retention.
	if err := a.Namespaces().SetRetention("acme/ns1", utils.RetentionPolicies{RetentionTimeInMinutes: 60, RetentionSizeInMB: 100}); err != nil {
		t.Fatal(err)
	}
	rp, err := a.Namespaces().GetRetention("acme/ns1")
	if err != nil || rp == nil || rp.RetentionTimeInMinutes != 60 || rp.RetentionSizeInMB != 100 {
		t.Fatalf("retention %+v, %v", rp, err)
	}
	// Backlog quota.
	q := utils.NewBacklogQuota(1<<30, 0, utils.ProducerRequestHold)
	if err := a.Namespaces().SetBacklogQuota("acme/ns1", q, utils.DestinationStorage); err != nil {
		t.Fatal(err)
	}
	qm, err := a.Namespaces().GetBacklogQuotaMap("acme/ns1")
	if err != nil || qm[utils.DestinationStorage].LimitSize != 1<<30 {
		t.Fatalf("backlog quotas %+v, %v", qm, err)
	}
	if err := a.Namespaces().RemoveBacklogQuota("acme/ns1"); err != nil {
		t.Fatal(err)
	}
	// Deduplication and TTL.
	if err := a.Namespaces().SetDeduplicationStatus("acme/ns1", true); err != nil {
		t.Fatal(err)
	}
	if err := a.Namespaces().SetNamespaceMessageTTL("acme/ns1", 3600); err != nil {
		t.Fatal(err)
	}
	ttl, err := a.Namespaces().GetNamespaceMessageTTL("acme/ns1")
	if err != nil || ttl != 3600 {
		t.Fatalf("ttl %d, %v", ttl, err)
	}
	pol, err = a.Namespaces().GetPolicies("acme/ns1")
	if err != nil || pol.DeduplicationEnabled == nil || !*pol.DeduplicationEnabled || pol.RetentionPolicies == nil {
		t.Fatalf("policies %+v, %v", pol, err)
	}
	// A tenant with namespaces cannot be deleted; a namespace with topics
	// cannot either.
	if err := a.Tenants().Delete("acme"); err == nil {
		t.Fatal("deleted a tenant with namespaces")
	}
	if err := a.Topics().Create(*mustTopicName(t, "persistent://acme/ns1/t"), 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Namespaces().DeleteNamespace("acme/ns1"); err == nil {
		t.Fatal("deleted a namespace with topics")
	}
	if err := a.Topics().Delete(*mustTopicName(t, "persistent://acme/ns1/t"), false, true); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"acme/ns1", "acme/ns2"} {
		if err := a.Namespaces().DeleteNamespace(ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Tenants().Delete("acme"); err != nil {
		t.Fatal(err)
	}
}

func TestAdminTopics(t *testing.T) {
	n := startNode(t)
	// The producer below is disconnected by the forced deletion; with
	// automatic creation off it does not bring the topic back.
	n.log.allow(`TopicNotFound`, `(?i)topic not found`,
		// v0.19.0 closes the producer it gave up on from its reconnection
		// goroutine while the test closes it too; it sometimes reports the
		// SUCCESS of its CLOSE_PRODUCER as unexpected (seen 1 run in 15).
		`unexpected response for request \d+ of type SUCCESS`,
		// Its reconnection goroutine for that producer can still be
		// sending (a lookup, a CLOSE_PRODUCER) when the test closes the
		// client at the end; the request then fails on the closed
		// connection (seen once in the CI run of 43dbfb8, 0 in 65 runs
		// alone and under load).
		`internalSendRequest failed for connectionClosed`)
	a := n.admin()
	if err := a.Namespaces().CreateNamespace("public/admin"); err != nil {
		t.Fatal(err)
	}
	if err := a.Namespaces().SetTopicAutoCreation(*mustNS(t, "public/admin"), autoCreation(false)); err != nil {
		t.Fatal(err)
	}
	np := mustTopicName(t, "persistent://public/admin/plain")
	pt := mustTopicName(t, "persistent://public/admin/parted")
	if err := a.Topics().Create(*np, 0); err != nil {
		t.Fatal(err)
	}
	if err := a.Topics().Create(*np, 0); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("creating a topic twice: %v", err)
	}
	if err := a.Topics().Create(*pt, 3); err != nil {
		t.Fatal(err)
	}
	if err := a.Topics().Update(*pt, 5); err != nil {
		t.Fatal(err)
	}
	meta, err := a.Topics().GetMetadata(*pt)
	if err != nil || meta.Partitions != 5 {
		t.Fatalf("metadata %+v, %v", meta, err)
	}
	partitioned, plain, err := a.Topics().List(*mustNS(t, "public/admin"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(partitioned, []string{pt.String()}) || !slices.Equal(plain, []string{np.String()}) {
		t.Fatalf("list: partitioned %v, plain %v", partitioned, plain)
	}
	topics, err := a.Namespaces().GetTopics("public/admin")
	if err != nil || len(topics) != 6 {
		t.Fatalf("namespace topics %v, %v", topics, err)
	}

	// Subscriptions, stats, peek.
	c := n.client()
	if err := a.Subscriptions().Create(*np, "sub", utils.Earliest); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscriptions().Create(*np, "sub", utils.Earliest); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("creating a subscription twice: %v", err)
	}
	p := producer(t, c, pulsar.ProducerOptions{Topic: np.String(), DisableBatching: true})
	ctx := ctxT(t, 30*time.Second)
	for i := 0; i < 10; i++ {
		if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: []byte(fmt.Sprint("m-", i)), Properties: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	subs, err := a.Subscriptions().List(*np)
	if err != nil || !slices.Equal(subs, []string{"sub"}) {
		t.Fatalf("subscriptions %v, %v", subs, err)
	}
	msgs, err := a.Subscriptions().PeekMessages(*np, "sub", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || string(msgs[0].Payload) != "m-0" || string(msgs[2].Payload) != "m-2" || msgs[1].Properties["i"] != "1" {
		t.Fatalf("peeked %d messages: %+v", len(msgs), msgs)
	}
	if err := a.Subscriptions().SkipMessages(*np, "sub", 4); err != nil {
		t.Fatal(err)
	}
	st, err := a.Topics().GetStats(*np)
	if err != nil {
		t.Fatal(err)
	}
	if st.MsgCounterIn != 10 || st.Subscriptions["sub"].MsgBacklog != 6 || len(st.Publishers) != 1 || st.StorageSize == 0 {
		t.Fatalf("stats: in %d, backlog %d, publishers %d, storage %d", st.MsgCounterIn, st.Subscriptions["sub"].MsgBacklog,
			len(st.Publishers), st.StorageSize)
	}
	msgs, err = a.Subscriptions().PeekMessages(*np, "sub", 1)
	if err != nil || string(msgs[0].Payload) != "m-4" {
		t.Fatalf("peek after skip: %v %v", msgs, err)
	}
	id := msgs[0].MessageID
	m, err := a.Subscriptions().GetMessageByID(*np, id.LedgerID, id.EntryID)
	if err != nil || string(m.Payload) != "m-4" {
		t.Fatalf("message by id: %v %v", m, err)
	}
	if err := a.Subscriptions().ResetCursorToMessageID(*np, "sub", utils.MessageID{LedgerID: id.LedgerID, EntryID: id.EntryID - 2}); err != nil {
		t.Fatal(err)
	}
	msgs, err = a.Subscriptions().PeekMessages(*np, "sub", 1)
	if err != nil || string(msgs[0].Payload) != "m-2" {
		t.Fatalf("peek after reset: %v %v", msgs, err)
	}
	if err := a.Subscriptions().ResetCursorToTimestamp(*np, "sub", 0); err != nil {
		t.Fatal(err)
	}
	msgs, err = a.Subscriptions().PeekMessages(*np, "sub", 1)
	if err != nil || string(msgs[0].Payload) != "m-0" {
		t.Fatalf("peek after reset to time 0: %v %v", msgs, err)
	}
	if err := a.Subscriptions().ClearBacklog(*np, "sub"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Subscriptions().PeekMessages(*np, "sub", 1); err == nil {
		t.Fatal("peek on an empty backlog succeeded")
	}
	is, err := a.Topics().GetInternalStats(*np)
	if err != nil || is.NumberOfEntries == 0 || len(is.Ledgers) == 0 || is.Cursors["sub"].MarkDeletePosition == "" {
		t.Fatalf("internal stats %+v, %v", is, err)
	}
	last, err := a.Topics().GetLastMessageID(*np)
	if err != nil || last.EntryID != id.EntryID+5 {
		t.Fatalf("last message id %+v, %v", last, err)
	}
	ld, err := a.Topics().Lookup(*np)
	if err != nil || ld.BrokerURL != n.url {
		t.Fatalf("lookup %+v, %v", ld, err)
	}
	if err := a.Subscriptions().Delete(*np, "sub"); err != nil {
		t.Fatal(err)
	}

	// Deleting: refused while a producer is connected, unless forced.
	if err := a.Topics().Delete(*np, false, true); err == nil || !strings.Contains(err.Error(), "412") {
		t.Fatalf("deleting a topic in use: %v", err)
	}
	if err := a.Topics().Delete(*np, true, true); err != nil {
		t.Fatal(err)
	}
	if err := a.Topics().Delete(*pt, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Topics().GetStats(*np); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("stats of a deleted topic: %v", err)
	}
}

// Peek returns the messages of a batch, decompressed.
func TestAdminPeekBatch(t *testing.T) {
	n := startNode(t)
	a := n.admin()
	c := n.client()
	tp := mustTopicName(t, topic(t, "peekbatch"))
	if err := a.Subscriptions().Create(*tp, "sub", utils.Earliest); err != nil {
		t.Fatal(err)
	}
	for _, ct := range []pulsar.CompressionType{pulsar.NoCompression, pulsar.LZ4, pulsar.ZLib, pulsar.ZSTD} {
		p := producer(t, c, pulsar.ProducerOptions{Topic: tp.String(), CompressionType: ct, BatchingMaxMessages: 3,
			BatchingMaxPublishDelay: time.Second})
		produce(t, p, fmt.Sprint("c", ct), 3)
		p.Close()
	}
	msgs, err := a.Subscriptions().PeekMessages(*tp, "sub", 12)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Payload))
	}
	var exp []string
	for ct := 0; ct < 4; ct++ {
		exp = append(exp, want(fmt.Sprint("c", ct), 0, 3)...)
	}
	if !equal(got, exp) {
		t.Fatalf("peeked %v", got)
	}
}

// Bad requests get 4xx with a reason, never a crash.
func TestAdminBadRequests(t *testing.T) {
	n := startNode(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"PUT", "/admin/v2/tenants/bad%20name", "{}", 400},
		{"PUT", "/admin/v2/tenants/x", "{not json", 400},
		{"GET", "/admin/v2/tenants/nosuch", "", 404},
		{"GET", "/admin/v2/namespaces/public/nosuch", "", 404},
		{"PUT", "/admin/v2/persistent/public/default/t/partitions", "-3", 400},
		{"PUT", "/admin/v2/persistent/public/default/t/partitions", `{"partitions":"x"}`, 400},
		{"GET", "/admin/v2/persistent/public/default/nosuch/stats", "", 404},
		{"POST", "/admin/v2/persistent/public/default/nosuch/subscription/s/skip/x", "", 400},
		{"GET", "/admin/v2/persistent/public/default/nosuch/subscription/s/position/0", "", 400},
		{"POST", "/admin/v2/namespaces/public/default/backlogQuota?backlogQuotaType=bogus", "{}", 400},
		{"GET", "/admin/v2/schemas/public/default/nosuch/schema", "", 404},
		{"GET", "/admin/v2/persistent/public/default/t/ledger/x/entry/1", "", 400},
	} {
		req, err := http.NewRequest(tc.method, n.httpURL+tc.path, bytes.NewBufferString(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var reason struct {
			Reason string `json:"reason"`
		}
		if resp.StatusCode != tc.status || json.Unmarshal(body, &reason) != nil || reason.Reason == "" {
			t.Errorf("%s %s: %d %s, want %d with a reason", tc.method, tc.path, resp.StatusCode, body, tc.status)
		}
	}
}

// The client's HTTP lookup service works against the broker's web port.
func TestHTTPLookup(t *testing.T) {
	n := startNode(t)
	c := n.client(func(o *pulsar.ClientOptions) { o.URL = n.httpURL })
	tp := topic(t, "http")
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	produce(t, p, "m", 10)
	if got := receive(t, cons, 10); !equal(got, want("m", 0, 10)) {
		t.Fatalf("received %v", got)
	}
}

// /metrics carries Pulsar's metric names.
func TestMetrics(t *testing.T) {
	n := startNodeWithMetrics(t)
	c := n.client()
	tp := topic(t, "metrics")
	cons := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp})
	produce(t, p, "m", 10)
	receive(t, cons, 10)
	resp, err := http.Get(n.httpURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"pulsar_rate_in", "pulsar_rate_out", "pulsar_throughput_in", "pulsar_storage_size",
		"pulsar_msg_backlog", "pulsar_subscriptions_count", "pulsar_producers_count", "pulsar_consumers_count",
		`pulsar_in_messages_total{cluster="standalone",namespace="public/default",topic="` + tp + `"} 10`} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}
