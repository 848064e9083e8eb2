package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxBodyBytes bounds a request body of the admin API.
const maxBodyBytes = 4 << 20

// httpAPI serves Pulsar's admin API (v2) and lookup API, the subset that
// pulsaradmin and the Go client's HTTP lookup use. Errors are
// {"reason": "..."} with Pulsar's status codes: 400 bad input, 404 not
// found, 409 already exists or in conflict, 412 precondition failed.
type httpAPI struct {
	b *Broker
}

// RegisterHTTP registers the admin API (/admin/v2/...) and the lookup API
// (/lookup/v2/...) on mux. The caller serves mux (on webServicePort), along
// with /metrics from the Registerer given in Options.
func (b *Broker) RegisterHTTP(mux *http.ServeMux) {
	h := &httpAPI{b: b}
	route := func(pattern string, fn func(w http.ResponseWriter, r *http.Request) error) {
		mux.HandleFunc(pattern, h.wrap(fn))
	}
	// Clusters.
	route("GET /admin/v2/clusters", h.listClusters)
	route("GET /admin/v2/clusters/{cluster}", h.getCluster)
	route("PUT /admin/v2/clusters/{cluster}", h.putCluster)
	route("POST /admin/v2/clusters/{cluster}", h.putCluster)
	route("DELETE /admin/v2/clusters/{cluster}", h.deleteCluster)
	// Tenants.
	route("GET /admin/v2/tenants", h.listTenants)
	route("GET /admin/v2/tenants/{tenant}", h.getTenant)
	route("PUT /admin/v2/tenants/{tenant}", h.putTenant)
	route("POST /admin/v2/tenants/{tenant}", h.putTenant)
	route("DELETE /admin/v2/tenants/{tenant}", h.deleteTenant)
	// Namespaces.
	route("GET /admin/v2/namespaces/{tenant}", h.listNamespaces)
	route("GET /admin/v2/namespaces/{tenant}/{ns}", h.getPolicies)
	route("PUT /admin/v2/namespaces/{tenant}/{ns}", h.createNamespace)
	route("DELETE /admin/v2/namespaces/{tenant}/{ns}", h.deleteNamespace)
	route("GET /admin/v2/namespaces/{tenant}/{ns}/topics", h.namespaceTopics)
	route("GET /admin/v2/namespaces/{tenant}/{ns}/backlogQuotaMap", h.getBacklogQuotas)
	route("POST /admin/v2/namespaces/{tenant}/{ns}/backlogQuota", h.setBacklogQuota)
	route("DELETE /admin/v2/namespaces/{tenant}/{ns}/backlogQuota", h.removeBacklogQuota)
	route("POST /admin/v2/namespaces/{tenant}/{ns}/deduplication", h.setDeduplication)
	route("DELETE /admin/v2/namespaces/{tenant}/{ns}/deduplication", h.removeDeduplication)
	for suffix, key := range namespacePolicyEndpoints() {
		key := key
		p := "/admin/v2/namespaces/{tenant}/{ns}/" + suffix
		route("GET "+p, func(w http.ResponseWriter, r *http.Request) error { return h.getPolicy(w, r, key) })
		route("POST "+p, func(w http.ResponseWriter, r *http.Request) error { return h.setPolicy(w, r, key) })
		route("DELETE "+p, func(w http.ResponseWriter, r *http.Request) error { return h.removePolicy(w, r, key) })
	}
	// Topics, in both domains.
	for _, dom := range []string{domainPersistent, domainNonPersistent} {
		dom := dom
		ns := "/admin/v2/" + dom + "/{tenant}/{ns}"
		tp := ns + "/{topic}"
		t := func(fn func(w http.ResponseWriter, r *http.Request, tn TopicName) error) func(http.ResponseWriter, *http.Request) error {
			return func(w http.ResponseWriter, r *http.Request) error {
				tn, err := pathTopic(r, dom)
				if err != nil {
					return err
				}
				return fn(w, r, tn)
			}
		}
		route("GET "+ns, func(w http.ResponseWriter, r *http.Request) error { return h.listTopics(w, r, dom, false) })
		route("GET "+ns+"/partitioned", func(w http.ResponseWriter, r *http.Request) error { return h.listTopics(w, r, dom, true) })
		route("PUT "+tp, t(h.createTopic))
		route("DELETE "+tp, t(h.deleteTopic))
		route("PUT "+tp+"/partitions", t(h.createPartitioned))
		route("POST "+tp+"/partitions", t(h.updatePartitioned))
		route("GET "+tp+"/partitions", t(h.getPartitions))
		route("DELETE "+tp+"/partitions", t(h.deletePartitioned))
		route("GET "+tp+"/stats", t(h.topicStats))
		route("GET "+tp+"/partitioned-stats", t(h.partitionedStats))
		route("GET "+tp+"/internalStats", t(h.internalStats))
		route("GET "+tp+"/lastMessageId", t(h.lastMessageID))
		route("GET "+tp+"/messageid/{timestamp}", t(h.messageIDByTime))
		route("PUT "+tp+"/unload", t(h.unloadTopic))
		route("POST "+tp+"/terminate", t(h.terminateTopic))
		route("GET "+tp+"/subscriptions", t(h.listSubscriptions))
		route("PUT "+tp+"/subscription/{sub}", t(h.createSubscription))
		route("DELETE "+tp+"/subscription/{sub}", t(h.deleteSubscription))
		route("POST "+tp+"/subscription/{sub}/skip/{n}", t(h.skip))
		route("POST "+tp+"/subscription/{sub}/skip_all", t(h.skipAll))
		route("POST "+tp+"/subscription/{sub}/resetcursor/{timestamp}", t(h.resetCursorToTime))
		route("POST "+tp+"/subscription/{sub}/resetcursor", t(h.resetCursorToID))
		route("POST "+tp+"/subscription/{sub}/expireMessages/{seconds}", t(h.expireMessages))
		route("POST "+tp+"/all_subscription/expireMessages/{seconds}", t(h.expireAllMessages))
		route("GET "+tp+"/subscription/{sub}/position/{n}", t(h.peek))
		route("GET "+tp+"/ledger/{ledger}/entry/{entry}", t(h.getMessageByID))
		// Lookup.
		route("GET /lookup/v2/topic/"+dom+"/{tenant}/{ns}/{topic}", t(h.lookup))
		route("GET /lookup/v2/destination/"+dom+"/{tenant}/{ns}/{topic}", t(h.lookup))
	}
	// Schemas.
	route("GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema", h.getSchema)
	route("GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema/{version}", h.getSchema)
	route("POST /admin/v2/schemas/{tenant}/{ns}/{topic}/schema", h.postSchema)
	route("DELETE /admin/v2/schemas/{tenant}/{ns}/{topic}/schema", h.deleteSchema)
}

// namespacePolicyEndpoints maps the namespace sub-resources that read and
// write one policy field to that field.
func namespacePolicyEndpoints() map[string]string {
	return map[string]string{
		"messageTTL":                            polMessageTTL,
		"retention":                             polRetention,
		"autoTopicCreation":                     polAutoTopic,
		"maxProducersPerTopic":                  "max_producers_per_topic",
		"maxConsumersPerTopic":                  "max_consumers_per_topic",
		"maxConsumersPerSubscription":           "max_consumers_per_subscription",
		"schemaValidationEnforced":              "schema_validation_enforced",
		"schemaCompatibilityStrategy":           "schema_compatibility_strategy",
		"schemaAutoUpdateCompatibilityStrategy": "schema_auto_update_compatibility_strategy",
		"isAllowAutoUpdateSchema":               "is_allow_auto_update_schema",
		"encryptionRequired":                    "encryption_required",
		"subscriptionAuthMode":                  "subscription_auth_mode",
		"compactionThreshold":                   "compaction_threshold",
		"offloadThreshold":                      "offload_threshold",
		"subscriptionExpirationTime":            "subscription_expiration_time_minutes",
		"inactiveTopicPolicies":                 "inactive_topic_policies",
		"replication":                           polReplication,
		"persistence":                           "persistence",
		"dispatchRate":                          "topicDispatchRate",
		"subscriptionDispatchRate":              "subscriptionDispatchRate",
		"publishRate":                           "publishMaxMessageRate",
		"subscribeRate":                         "clusterSubscribeRate",
		"maxTopicsPerNamespace":                 "max_topics_per_namespace",
		"properties":                            "properties",
	}
}

// wrap turns a handler that returns an error into an http.HandlerFunc that
// writes Pulsar's error shape. A panic in a handler is a bug; it is
// answered with 500 and logged, never taken down the process.
func (h *httpAPI) wrap(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				h.b.log.Error("broker: admin handler panicked", "method", r.Method, "path", r.URL.Path, "panic", p)
				writeError(w, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
			}
		}()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		if err := fn(w, r); err != nil {
			status, reason := httpStatus(err)
			if status >= 500 {
				h.b.log.Warn("broker: admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, status, reason)
		}
	}
}

func writeError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason})
}

func writeJSON(w http.ResponseWriter, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(data)
	return err
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// readJSON decodes a request body into v. An empty body or the JSON null
// leaves v as it is and reports false.
func readJSON(r *http.Request, v any) (bool, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return false, errorf(ErrBadRequest, "reading the request body: %v", err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" || s == "null" {
		return false, nil
	}
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return false, errorf(ErrBadRequest, "invalid JSON body: %v", err)
	}
	return true, nil
}

func (h *httpAPI) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.b.opts.OperationTimeout)
}

// pathName returns a path parameter, which must be a valid tenant,
// namespace or cluster name.
func pathName(r *http.Request, key string) (string, error) {
	v := r.PathValue(key)
	if err := checkNamePart(v); err != nil {
		return "", errorf(ErrBadRequest, "invalid %s %q: %v", key, v, err)
	}
	return v, nil
}

// pathTopic returns the topic named by the path.
func pathTopic(r *http.Request, domain string) (TopicName, error) {
	tenant, err := pathName(r, "tenant")
	if err != nil {
		return TopicName{}, err
	}
	ns, err := pathName(r, "ns")
	if err != nil {
		return TopicName{}, err
	}
	local := r.PathValue("topic")
	tn, err := ParseTopicName(domain + "://" + tenant + "/" + ns + "/" + local)
	if err != nil {
		return TopicName{}, errorf(ErrBadRequest, "%v", err)
	}
	return tn, nil
}

// pathSubscription returns the subscription named by the path. pulsaradmin
// escapes subscription names twice, so they are unescaped once more.
func pathSubscription(r *http.Request) (string, error) {
	s := r.PathValue("sub")
	if u, err := url.PathUnescape(s); err == nil {
		s = u
	}
	if s == "" {
		return "", errorf(ErrBadRequest, "empty subscription name")
	}
	return s, nil
}

func pathInt(r *http.Request, key string) (int64, error) {
	n, err := strconv.ParseInt(r.PathValue(key), 10, 64)
	if err != nil {
		return 0, errorf(ErrBadRequest, "invalid %s %q", key, r.PathValue(key))
	}
	return n, nil
}

func queryBool(r *http.Request, key string) bool {
	v, _ := strconv.ParseBool(r.URL.Query().Get(key))
	return v
}

// ---- Clusters ----

func (h *httpAPI) listClusters(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	names, err := h.b.res.clusters(ctx)
	if err != nil {
		return err
	}
	return writeJSON(w, names)
}

func (h *httpAPI) getCluster(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	cd, err := h.b.res.cluster(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(w, cd)
}

func (h *httpAPI) putCluster(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	var cd ClusterData
	if _, err := readJSON(r, &cd); err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if r.Method == http.MethodPut {
		err = h.b.res.createCluster(ctx, name, cd)
	} else {
		err = h.b.res.updateCluster(ctx, name, cd)
	}
	if err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) deleteCluster(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "cluster")
	if err != nil {
		return err
	}
	if name == h.b.opts.ClusterName {
		return errorf(ErrPrecondition, "cluster %s is this broker's", name)
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.res.deleteCluster(ctx, name); err != nil {
		return err
	}
	return noContent(w)
}

// ---- Tenants ----

func (h *httpAPI) listTenants(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	names, err := h.b.res.tenants(ctx)
	if err != nil {
		return err
	}
	return writeJSON(w, names)
}

func (h *httpAPI) getTenant(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "tenant")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	ti, err := h.b.res.tenant(ctx, name)
	if err != nil {
		return err
	}
	return writeJSON(w, ti)
}

func (h *httpAPI) putTenant(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "tenant")
	if err != nil {
		return err
	}
	ti := TenantInfo{AdminRoles: []string{}, AllowedClusters: []string{}}
	if _, err := readJSON(r, &ti); err != nil {
		return err
	}
	if ti.AdminRoles == nil {
		ti.AdminRoles = []string{}
	}
	if ti.AllowedClusters == nil {
		ti.AllowedClusters = []string{}
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	for _, c := range ti.AllowedClusters {
		if _, err := h.b.res.cluster(ctx, c); err != nil {
			return errorf(ErrPrecondition, "cluster %s does not exist", c)
		}
	}
	if r.Method == http.MethodPut {
		err = h.b.res.createTenant(ctx, name, ti)
	} else {
		err = h.b.res.updateTenant(ctx, name, ti)
	}
	if err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) deleteTenant(w http.ResponseWriter, r *http.Request) error {
	name, err := pathName(r, "tenant")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.res.deleteTenant(ctx, name); err != nil {
		return err
	}
	return noContent(w)
}

// ---- Namespaces ----

func (h *httpAPI) pathNamespace(r *http.Request) (string, string, error) {
	tenant, err := pathName(r, "tenant")
	if err != nil {
		return "", "", err
	}
	ns, err := pathName(r, "ns")
	if err != nil {
		return "", "", err
	}
	return tenant, ns, nil
}

func (h *httpAPI) listNamespaces(w http.ResponseWriter, r *http.Request) error {
	tenant, err := pathName(r, "tenant")
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	names, err := h.b.res.namespaces(ctx, tenant)
	if err != nil {
		return err
	}
	return writeJSON(w, names)
}

func (h *httpAPI) getPolicies(w http.ResponseWriter, r *http.Request) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	p, _, err := h.b.res.policies(ctx, tenant, ns)
	if err != nil {
		return err
	}
	return writeJSON(w, p)
}

func (h *httpAPI) createNamespace(w http.ResponseWriter, r *http.Request) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	in := Policies{}
	if _, err := readJSON(r, &in); err != nil {
		return err
	}
	p := defaultPolicies(h.b.opts.ClusterName)
	mergePolicies(p, in)
	ctx, cancel := h.ctx(r)
	defer cancel()
	if err := h.b.res.createNamespace(ctx, tenant, ns, p); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) deleteNamespace(w http.ResponseWriter, r *http.Request) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if _, _, err := h.b.res.policies(ctx, tenant, ns); err != nil {
		return err
	}
	topics, err := h.b.topicsOfNamespace(ctx, tenant, ns, true, true)
	if err != nil {
		return err
	}
	partitioned, err := h.b.res.partitionedTopics(ctx, tenant, ns, domainPersistent)
	if err != nil {
		return err
	}
	npPartitioned, err := h.b.res.partitionedTopics(ctx, tenant, ns, domainNonPersistent)
	if err != nil {
		return err
	}
	partitioned = append(partitioned, npPartitioned...)
	if len(topics)+len(partitioned) > 0 {
		if !queryBool(r, "force") {
			return errorf(ErrAlreadyExists, "cannot delete the non-empty namespace %s/%s", tenant, ns)
		}
		for _, name := range topics {
			tn, err := ParseTopicName(name)
			if err != nil {
				continue
			}
			if err := h.b.deleteTopic(ctx, tn, true); err != nil && !errors.Is(err, ErrTopicNotFound) {
				return err
			}
		}
		for _, tn := range partitioned {
			if err := h.b.deletePartitionedTopic(ctx, tn, true); err != nil && !errors.Is(err, ErrTopicNotFound) {
				return err
			}
		}
	}
	if err := h.b.res.deleteNamespace(ctx, tenant, ns); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) namespaceTopics(w http.ResponseWriter, r *http.Request) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if _, _, err := h.b.res.policies(ctx, tenant, ns); err != nil {
		return err
	}
	mode := strings.ToUpper(r.URL.Query().Get("mode"))
	persistent := mode == "" || mode == "PERSISTENT" || mode == "ALL"
	nonPersistent := mode == "NON_PERSISTENT" || mode == "ALL"
	topics, err := h.b.topicsOfNamespace(ctx, tenant, ns, persistent, nonPersistent)
	if err != nil {
		return err
	}
	return writeJSON(w, topics)
}

// updatePolicies applies fn to a namespace's policies and then to its
// loaded topics.
func (h *httpAPI) updatePolicies(r *http.Request, fn func(Policies) error) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	p, err := h.b.res.updatePolicies(ctx, tenant, ns, fn)
	if err != nil {
		return err
	}
	return h.b.applyPolicies(ctx, tenant, ns, p)
}

func (h *httpAPI) getPolicy(w http.ResponseWriter, r *http.Request, key string) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	p, _, err := h.b.res.policies(ctx, tenant, ns)
	if err != nil {
		return err
	}
	raw, ok := p[key]
	if !ok || string(raw) == "null" {
		w.WriteHeader(http.StatusOK) // empty body: not set
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(raw)
	return err
}

func (h *httpAPI) setPolicy(w http.ResponseWriter, r *http.Request, key string) error {
	var v json.RawMessage
	ok, err := readJSON(r, &v)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ErrBadRequest, "missing value for %s", key)
	}
	if err := h.updatePolicies(r, func(p Policies) error { p[key] = v; return nil }); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) removePolicy(w http.ResponseWriter, r *http.Request, key string) error {
	if err := h.updatePolicies(r, func(p Policies) error { delete(p, key); return nil }); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) getBacklogQuotas(w http.ResponseWriter, r *http.Request) error {
	tenant, ns, err := h.pathNamespace(r)
	if err != nil {
		return err
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	p, _, err := h.b.res.policies(ctx, tenant, ns)
	if err != nil {
		return err
	}
	m := map[string]BacklogQuota{}
	p.get(polBacklogQuotaMap, &m)
	return writeJSON(w, m)
}

func backlogQuotaType(r *http.Request) (string, error) {
	t := r.URL.Query().Get("backlogQuotaType")
	switch t {
	case "":
		return "destination_storage", nil
	case "destination_storage", "message_age":
		return t, nil
	}
	return "", errorf(ErrBadRequest, "invalid backlog quota type %q", t)
}

func (h *httpAPI) setBacklogQuota(w http.ResponseWriter, r *http.Request) error {
	typ, err := backlogQuotaType(r)
	if err != nil {
		return err
	}
	var q BacklogQuota
	if ok, err := readJSON(r, &q); err != nil {
		return err
	} else if !ok {
		return errorf(ErrBadRequest, "missing backlog quota")
	}
	switch q.Policy {
	case "producer_request_hold", "producer_exception", "consumer_backlog_eviction":
	default:
		return errorf(ErrBadRequest, "invalid backlog quota policy %q", q.Policy)
	}
	err = h.updatePolicies(r, func(p Policies) error {
		m := map[string]BacklogQuota{}
		p.get(polBacklogQuotaMap, &m)
		m[typ] = q
		return p.set(polBacklogQuotaMap, m)
	})
	if err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) removeBacklogQuota(w http.ResponseWriter, r *http.Request) error {
	typ, err := backlogQuotaType(r)
	if err != nil {
		return err
	}
	err = h.updatePolicies(r, func(p Policies) error {
		m := map[string]BacklogQuota{}
		p.get(polBacklogQuotaMap, &m)
		delete(m, typ)
		return p.set(polBacklogQuotaMap, m)
	})
	if err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) setDeduplication(w http.ResponseWriter, r *http.Request) error {
	var on bool
	if ok, err := readJSON(r, &on); err != nil {
		return err
	} else if !ok {
		return errorf(ErrBadRequest, "missing true or false")
	}
	if err := h.updatePolicies(r, func(p Policies) error { return p.set(polDeduplication, on) }); err != nil {
		return err
	}
	return noContent(w)
}

func (h *httpAPI) removeDeduplication(w http.ResponseWriter, r *http.Request) error {
	if err := h.updatePolicies(r, func(p Policies) error { delete(p, polDeduplication); return nil }); err != nil {
		return err
	}
	return noContent(w)
}

// applyPolicies brings a namespace's loaded topics in line with changed
// policies (deduplication; retention applies to topics loaded later).
func (b *Broker) applyPolicies(ctx context.Context, tenant, ns string, p Policies) error {
	on := b.dedupEnabled(p)
	for _, t := range b.loadedTopics() {
		if t.name.Tenant != tenant || t.name.Namespace != ns {
			continue
		}
		if err := t.setDedup(ctx, on); err != nil {
			return err
		}
	}
	return nil
}
