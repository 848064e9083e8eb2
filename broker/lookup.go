package broker

import (
	"strings"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
)

// handleLookup serves LOOKUP. This broker owns every topic, so the answer
// is always Connect to itself. The response field is always set (the Go
// client dereferences it), and ServiceNotReady is never used (the Go client
// closes the connection that carried it).
func (c *conn) handleLookup(req *pulsar.CommandLookupTopic) {
	var r pulsar.Command
	r.Type = pulsar.TypeLookupResponse
	r.LookupResponse.RequestID = req.RequestID
	if _, err := ParseTopicName(req.Topic); err != nil {
		r.LookupResponse.Response = pulsar.LookupFailed
		r.LookupResponse.Error, r.LookupResponse.HasError = pulsar.InvalidTopicName, true
		r.LookupResponse.Message = err.Error()
		c.out.sendCommand(&r)
		return
	}
	r.LookupResponse.Response = pulsar.LookupConnect
	r.LookupResponse.BrokerServiceURL = c.b.serviceURL
	r.LookupResponse.Authoritative = true
	c.out.sendCommand(&r)
}

// handlePartitionedMetadata serves PARTITIONED_METADATA: the partition
// count, 0 for a topic that is not partitioned (or does not exist, or is a
// partition). A topic that does not exist in a namespace that creates
// partitioned topics automatically is created here, as in Pulsar.
func (c *conn) handlePartitionedMetadata(req *pulsar.CommandPartitionedTopicMetadata) {
	var r pulsar.Command
	r.Type = pulsar.TypePartitionedMetadataResponse
	r.PartitionedMetadataResponse.RequestID = req.RequestID
	tn, err := ParseTopicName(req.Topic)
	if err != nil {
		r.PartitionedMetadataResponse.Response = pulsar.PartitionedMetadataFailed
		r.PartitionedMetadataResponse.Error, r.PartitionedMetadataResponse.HasError = pulsar.InvalidTopicName, true
		r.PartitionedMetadataResponse.Message = err.Error()
		c.out.sendCommand(&r)
		return
	}
	ctx, cancel := c.opContext()
	defer cancel()
	n, err := c.b.partitionCount(ctx, tn, true)
	if err != nil {
		code, msg := serverError(err)
		if code == pulsar.ServiceNotReady {
			code = pulsar.MetadataError
		}
		r.PartitionedMetadataResponse.Response = pulsar.PartitionedMetadataFailed
		r.PartitionedMetadataResponse.Error, r.PartitionedMetadataResponse.HasError = code, true
		r.PartitionedMetadataResponse.Message = msg
		c.out.sendCommand(&r)
		return
	}
	r.PartitionedMetadataResponse.Partitions = uint32(n)
	c.out.sendCommand(&r)
}

// handleGetTopicsOfNamespace serves GET_TOPICS_OF_NAMESPACE (regex
// consumers poll it): fully qualified names, partitions included.
func (c *conn) handleGetTopicsOfNamespace(req *pulsar.CommandGetTopicsOfNamespace) {
	tenant, ns, ok := strings.Cut(req.Namespace, "/")
	if !ok || checkNamePart(tenant) != nil || checkNamePart(ns) != nil {
		c.sendErrorResponse(req.RequestID, pulsar.MetadataError, "invalid namespace "+req.Namespace)
		return
	}
	ctx, cancel := c.opContext()
	defer cancel()
	if _, _, err := c.b.res.policies(ctx, tenant, ns); err != nil {
		code, msg := serverError(err)
		c.sendErrorResponse(req.RequestID, code, msg)
		return
	}
	persistent := req.Mode == pulsar.TopicsPersistent || req.Mode == pulsar.TopicsAll
	nonPersistent := req.Mode == pulsar.TopicsNonPersistent || req.Mode == pulsar.TopicsAll
	topics, err := c.b.topicsOfNamespace(ctx, tenant, ns, persistent, nonPersistent)
	if err != nil {
		code, msg := serverError(err)
		c.sendErrorResponse(req.RequestID, code, msg)
		return
	}
	var r pulsar.Command
	r.Type = pulsar.TypeGetTopicsOfNamespaceResponse
	r.GetTopicsOfNamespaceResponse = pulsar.CommandGetTopicsOfNamespaceResponse{RequestID: req.RequestID,
		Topics: topics, Changed: true}
	c.out.sendCommand(&r)
}
