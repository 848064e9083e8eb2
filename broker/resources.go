package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/magnetar/magnetar/metastore"
)

// The configuration the broker keeps in the metadata stores, in Pulsar's
// JSON shapes and at Pulsar's paths (see package metastore):
//
//	configuration store
//	  /admin/clusters/<cluster>                         ClusterData
//	  /admin/policies/<tenant>                          TenantInfo
//	  /admin/policies/<tenant>/<namespace>              Policies
//	  /admin/partitioned-topics/<t>/<ns>/<domain>/<enc> {"partitions": N}
//	metadata store
//	  /managed-ledgers/<t>/<ns>/persistent/<enc>        a persistent topic (package managedledger)
//	  /schemas/<t>/<ns>/<enc>                           schemaRecord (schema.go)
//	  /counters/producer-name/broker-<seq>              ephemeral: this broker's instance number
//
// Policies are kept as a JSON object whose fields the broker does not know
// are preserved as they were written.

// ClusterData is a cluster's registration (Pulsar's ClusterData).
type ClusterData struct {
	ServiceURL                     string   `json:"serviceUrl,omitempty"`
	ServiceURLTLS                  string   `json:"serviceUrlTls,omitempty"`
	BrokerServiceURL               string   `json:"brokerServiceUrl,omitempty"`
	BrokerServiceURLTLS            string   `json:"brokerServiceUrlTls,omitempty"`
	PeerClusterNames               []string `json:"peerClusterNames,omitempty"`
	AuthenticationPlugin           string   `json:"authenticationPlugin,omitempty"`
	AuthenticationParameters       string   `json:"authenticationParameters,omitempty"`
	BrokerClientTrustCertsFilePath string   `json:"brokerClientTrustCertsFilePath,omitempty"`
	BrokerClientTLSEnabled         bool     `json:"brokerClientTlsEnabled"`
}

// TenantInfo is a tenant's configuration.
type TenantInfo struct {
	AdminRoles      []string `json:"adminRoles"`
	AllowedClusters []string `json:"allowedClusters"`
}

// partitionedMetadata is a partitioned topic's metadata node.
type partitionedMetadata struct {
	Partitions int               `json:"partitions"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Policies are a namespace's policies: Pulsar's Policies JSON object.
type Policies map[string]json.RawMessage

// Policy keys the broker acts on.
const (
	polDeduplication   = "deduplicationEnabled"
	polRetention       = "retention_policies"
	polBacklogQuotaMap = "backlog_quota_map"
	polMessageTTL      = "message_ttl_in_seconds"
	polAutoTopic       = "autoTopicCreationOverride"
	polBundles         = "bundles"
	polReplication     = "replication_clusters"
)

// RetentionPolicies is a namespace's retention policy.
type RetentionPolicies struct {
	RetentionTimeInMinutes int   `json:"retentionTimeInMinutes"`
	RetentionSizeInMB      int64 `json:"retentionSizeInMB"`
}

// BacklogQuota is one entry of a namespace's backlog quota map.
type BacklogQuota struct {
	LimitSize int64  `json:"limitSize"`
	LimitTime int64  `json:"limitTime"`
	Policy    string `json:"policy"`
}

// AutoTopicCreation overrides the broker's automatic topic creation for a
// namespace.
type AutoTopicCreation struct {
	Allow                bool   `json:"allowAutoTopicCreation"`
	TopicType            string `json:"topicType"`
	DefaultNumPartitions int    `json:"defaultNumPartitions,omitempty"`
}

// get decodes the value of key into v and reports whether it is set (not
// absent, not null).
func (p Policies) get(key string, v any) bool {
	raw, ok := p[key]
	if !ok || string(raw) == "null" {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}

// set stores v under key; a nil v removes the key.
func (p Policies) set(key string, v any) error {
	if v == nil {
		delete(p, key)
		return nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p[key] = raw
	return nil
}

// defaultPolicies are the policies of a new namespace.
func defaultPolicies(cluster string) Policies {
	p := Policies{}
	_ = p.set(polBundles, map[string]any{"boundaries": []string{"0x00000000", "0xffffffff"}, "numBundles": 1})
	_ = p.set(polReplication, []string{cluster})
	_ = p.set(polBacklogQuotaMap, map[string]BacklogQuota{})
	_ = p.set("auth_policies", map[string]any{"namespace_auth": map[string]any{}, "destination_auth": map[string]any{}, "subscription_auth_roles": map[string]any{}})
	_ = p.set("schema_compatibility_strategy", "UNDEFINED")
	_ = p.set("schema_auto_update_compatibility_strategy", "Full")
	_ = p.set("subscription_auth_mode", "None")
	_ = p.set("offload_threshold", -1)
	_ = p.set("deleted", false)
	_ = p.set("encryption_required", false)
	return p
}

// mergePolicies applies the fields of an incoming Policies document over
// p: null values and the empty strings that Go's admin client sends for
// unset enums are ignored.
func mergePolicies(p Policies, in Policies) {
	for k, v := range in {
		s := strings.TrimSpace(string(v))
		if s == "null" || s == `""` {
			continue
		}
		p[k] = v
	}
}

// resources reads and writes the configuration kept in the stores.
type resources struct {
	meta, conf metastore.Store
	timeout    time.Duration
}

func (r *resources) getJSON(ctx context.Context, store metastore.Store, path string, v any) (metastore.Stat, error) {
	data, st, err := store.Get(ctx, path)
	if err != nil {
		return st, err
	}
	if len(data) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return st, fmt.Errorf("broker: %s: %w (%v)", path, metastore.ErrCorruption, err)
	}
	return st, nil
}

func (r *resources) createJSON(ctx context.Context, store metastore.Store, path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = store.Create(ctx, path, data, metastore.CreateParents)
	return err
}

func (r *resources) putJSON(ctx context.Context, store metastore.Store, path string, v any, version int64) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = store.Put(ctx, path, data, version)
	return err
}

// ---- Clusters ----

func (r *resources) clusters(ctx context.Context) ([]string, error) {
	names, err := r.conf.Children(ctx, metastore.ClustersRoot)
	if errors.Is(err, metastore.ErrNotFound) {
		return []string{}, nil
	}
	return names, err
}

func (r *resources) cluster(ctx context.Context, name string) (ClusterData, error) {
	var cd ClusterData
	_, err := r.getJSON(ctx, r.conf, metastore.ClusterPath(name), &cd)
	if errors.Is(err, metastore.ErrNotFound) {
		return cd, errorf(ErrNotFound, "cluster %s does not exist", name)
	}
	return cd, err
}

func (r *resources) createCluster(ctx context.Context, name string, cd ClusterData) error {
	err := r.createJSON(ctx, r.conf, metastore.ClusterPath(name), cd)
	if errors.Is(err, metastore.ErrNodeExists) {
		return errorf(ErrAlreadyExists, "cluster %s already exists", name)
	}
	return err
}

func (r *resources) updateCluster(ctx context.Context, name string, cd ClusterData) error {
	if _, err := r.cluster(ctx, name); err != nil {
		return err
	}
	return r.putJSON(ctx, r.conf, metastore.ClusterPath(name), cd, metastore.AnyVersion)
}

func (r *resources) deleteCluster(ctx context.Context, name string) error {
	err := r.conf.Delete(ctx, metastore.ClusterPath(name), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) {
		return errorf(ErrNotFound, "cluster %s does not exist", name)
	}
	return err
}

// ---- Tenants ----

func (r *resources) tenants(ctx context.Context) ([]string, error) {
	names, err := r.conf.Children(ctx, metastore.PoliciesRoot)
	if errors.Is(err, metastore.ErrNotFound) {
		return []string{}, nil
	}
	return names, err
}

func (r *resources) tenant(ctx context.Context, name string) (TenantInfo, error) {
	var ti TenantInfo
	_, err := r.getJSON(ctx, r.conf, metastore.TenantPath(name), &ti)
	if errors.Is(err, metastore.ErrNotFound) {
		return ti, errorf(ErrNotFound, "tenant %s does not exist", name)
	}
	if ti.AdminRoles == nil {
		ti.AdminRoles = []string{}
	}
	if ti.AllowedClusters == nil {
		ti.AllowedClusters = []string{}
	}
	return ti, err
}

func (r *resources) createTenant(ctx context.Context, name string, ti TenantInfo) error {
	if err := checkNamePart(name); err != nil {
		return errorf(ErrBadRequest, "invalid tenant name %q: %v", name, err)
	}
	err := r.createJSON(ctx, r.conf, metastore.TenantPath(name), ti)
	if errors.Is(err, metastore.ErrNodeExists) {
		return errorf(ErrAlreadyExists, "tenant %s already exists", name)
	}
	return err
}

func (r *resources) updateTenant(ctx context.Context, name string, ti TenantInfo) error {
	if _, err := r.tenant(ctx, name); err != nil {
		return err
	}
	return r.putJSON(ctx, r.conf, metastore.TenantPath(name), ti, metastore.AnyVersion)
}

func (r *resources) deleteTenant(ctx context.Context, name string) error {
	if _, err := r.tenant(ctx, name); err != nil {
		return err
	}
	nss, err := r.conf.Children(ctx, metastore.TenantPath(name))
	if err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return err
	}
	if len(nss) > 0 {
		return errorf(ErrAlreadyExists, "the tenant %s still has namespaces", name)
	}
	err = r.conf.Delete(ctx, metastore.TenantPath(name), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) {
		return errorf(ErrNotFound, "tenant %s does not exist", name)
	}
	if errors.Is(err, metastore.ErrNotEmpty) {
		return errorf(ErrAlreadyExists, "the tenant %s still has namespaces", name)
	}
	return err
}

// ---- Namespaces ----

func (r *resources) namespaces(ctx context.Context, tenant string) ([]string, error) {
	if _, err := r.tenant(ctx, tenant); err != nil {
		return nil, err
	}
	names, err := r.conf.Children(ctx, metastore.TenantPath(tenant))
	if err != nil && !errors.Is(err, metastore.ErrNotFound) {
		return nil, err
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, tenant+"/"+n)
	}
	return out, nil
}

// policies returns a namespace's policies and their version.
func (r *resources) policies(ctx context.Context, tenant, ns string) (Policies, int64, error) {
	p := Policies{}
	st, err := r.getJSON(ctx, r.conf, metastore.NamespacePoliciesPath(tenant, ns), &p)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, 0, errorf(ErrNotFound, "namespace %s/%s does not exist", tenant, ns)
	}
	return p, st.Version, err
}

func (r *resources) createNamespace(ctx context.Context, tenant, ns string, p Policies) error {
	if err := checkNamePart(ns); err != nil {
		return errorf(ErrBadRequest, "invalid namespace name %q: %v", ns, err)
	}
	if _, err := r.tenant(ctx, tenant); err != nil {
		return err
	}
	err := r.createJSON(ctx, r.conf, metastore.NamespacePoliciesPath(tenant, ns), p)
	if errors.Is(err, metastore.ErrNodeExists) {
		return errorf(ErrAlreadyExists, "namespace %s/%s already exists", tenant, ns)
	}
	return err
}

// updatePolicies applies fn to a namespace's policies with a
// compare-and-set, retrying on concurrent updates.
func (r *resources) updatePolicies(ctx context.Context, tenant, ns string, fn func(Policies) error) (Policies, error) {
	for {
		p, version, err := r.policies(ctx, tenant, ns)
		if err != nil {
			return nil, err
		}
		if err := fn(p); err != nil {
			return nil, err
		}
		err = r.putJSON(ctx, r.conf, metastore.NamespacePoliciesPath(tenant, ns), p, version)
		if errors.Is(err, metastore.ErrBadVersion) {
			continue
		}
		return p, err
	}
}

func (r *resources) deleteNamespace(ctx context.Context, tenant, ns string) error {
	err := r.conf.Delete(ctx, metastore.NamespacePoliciesPath(tenant, ns), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) {
		return errorf(ErrNotFound, "namespace %s/%s does not exist", tenant, ns)
	}
	return err
}

// ---- Partitioned topics ----

// partitions returns the partition count of a partitioned topic, and
// whether it is one.
func (r *resources) partitions(ctx context.Context, tn TopicName) (int, bool, error) {
	var pm partitionedMetadata
	_, err := r.getJSON(ctx, r.conf, tn.partitionedPath(), &pm)
	if errors.Is(err, metastore.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return pm.Partitions, true, nil
}

func (r *resources) createPartitioned(ctx context.Context, tn TopicName, n int, props map[string]string) error {
	err := r.createJSON(ctx, r.conf, tn.partitionedPath(), partitionedMetadata{Partitions: n, Properties: props})
	if errors.Is(err, metastore.ErrNodeExists) {
		return errorf(ErrAlreadyExists, "partitioned topic %s already exists", tn)
	}
	return err
}

func (r *resources) updatePartitioned(ctx context.Context, tn TopicName, n int) error {
	for {
		var pm partitionedMetadata
		st, err := r.getJSON(ctx, r.conf, tn.partitionedPath(), &pm)
		if errors.Is(err, metastore.ErrNotFound) {
			return errorf(ErrNotFound, "partitioned topic %s does not exist", tn)
		}
		if err != nil {
			return err
		}
		if n < pm.Partitions {
			return errorf(ErrBadRequest, "the number of partitions of %s can only grow (%d to %d)", tn, pm.Partitions, n)
		}
		pm.Partitions = n
		err = r.putJSON(ctx, r.conf, tn.partitionedPath(), pm, st.Version)
		if errors.Is(err, metastore.ErrBadVersion) {
			continue
		}
		return err
	}
}

func (r *resources) deletePartitioned(ctx context.Context, tn TopicName) error {
	err := r.conf.Delete(ctx, tn.partitionedPath(), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) {
		return errorf(ErrTopicNotFound, "partitioned topic %s does not exist", tn)
	}
	return err
}

// partitionedTopics lists the partitioned topics of a namespace in a domain.
func (r *resources) partitionedTopics(ctx context.Context, tenant, ns, domain string) ([]TopicName, error) {
	dir := metastore.PartitionedTopicsRoot + "/" + tenant + "/" + ns + "/" + domain
	names, err := r.conf.Children(ctx, dir)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]TopicName, 0, len(names))
	for _, n := range names {
		local, err := decodeName(n)
		if err != nil {
			continue
		}
		out = append(out, TopicName{Domain: domain, Tenant: tenant, Namespace: ns, Local: local, Partition: -1})
	}
	return out, nil
}

// persistentTopics lists the persistent topics of a namespace that have a
// managed ledger.
func (r *resources) persistentTopics(ctx context.Context, tenant, ns string) ([]TopicName, error) {
	dir := metastore.ManagedLedgersRoot + "/" + tenant + "/" + ns + "/" + domainPersistent
	names, err := r.meta.Children(ctx, dir)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]TopicName, 0, len(names))
	for _, n := range names {
		local, err := decodeName(n)
		if err != nil {
			continue
		}
		tn, err := ParseTopicName(domainPersistent + "://" + tenant + "/" + ns + "/" + local)
		if err != nil {
			continue
		}
		out = append(out, tn)
	}
	return out, nil
}

// sortedNames returns the full names of ts, sorted and without duplicates.
func sortedNames(ts []TopicName) []string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		out = append(out, t.String())
	}
	slices.Sort(out)
	return slices.Compact(out)
}
