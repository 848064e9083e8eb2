package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/magnetar/magnetar/internal/wire/pulsar"
	"github.com/magnetar/magnetar/metastore"
)

// schemaRegistry is a minimal schema registry: every schema a topic (a
// partitioned topic, for its partitions) was given, as numbered versions,
// in one metadata node per topic (/schemas/<tenant>/<ns>/<encoded topic>).
// Version numbers travel as 8-byte big-endian integers, as in Pulsar.
//
// Compatibility is checked by type only: a schema of another type than the
// topic's latest is refused (IncompatibleSchema), unless one of them is
// NONE (bytes); within a type every schema is accepted and gets a new
// version, and a schema given before gets its old version back.
type schemaRegistry struct {
	store metastore.Store
}

// schemaRecord is the content of a topic's schema node.
type schemaRecord struct {
	Versions []schemaEntry `json:"versions"`
}

// schemaEntry is one version of a topic's schema.
type schemaEntry struct {
	Version    int64             `json:"version"`
	Name       string            `json:"name"`
	Type       int32             `json:"type"`
	Data       []byte            `json:"data"`
	Properties map[string]string `json:"properties,omitempty"`
	Timestamp  int64             `json:"timestamp"`
	Deleted    bool              `json:"deleted,omitempty"`
}

func encodeSchemaVersion(v int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(v))
}

func decodeSchemaVersion(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(b)), true
}

func (r *schemaRegistry) load(ctx context.Context, tn TopicName) (schemaRecord, int64, bool, error) {
	var rec schemaRecord
	data, st, err := r.store.Get(ctx, tn.schemaPath())
	if errors.Is(err, metastore.ErrNotFound) {
		return rec, 0, false, nil
	}
	if err != nil {
		return rec, 0, false, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, 0, false, fmt.Errorf("broker: schema of %s: %w (%v)", tn, metastore.ErrCorruption, err)
	}
	return rec, st.Version, true, nil
}

// latest returns the newest live version.
func (rec *schemaRecord) latest() (schemaEntry, bool) {
	for i := len(rec.Versions) - 1; i >= 0; i-- {
		if !rec.Versions[i].Deleted {
			return rec.Versions[i], true
		}
	}
	return schemaEntry{}, false
}

func sameSchema(e *schemaEntry, s *pulsar.Schema) bool {
	if e.Type != int32(s.Type) || !bytes.Equal(e.Data, s.SchemaData) || len(e.Properties) != len(s.Properties) {
		return false
	}
	for _, kv := range s.Properties {
		if v, ok := e.Properties[kv.Key]; !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// getOrCreate returns the version of schema s on topic tn, adding it if it
// is new.
func (r *schemaRegistry) getOrCreate(ctx context.Context, tn TopicName, s *pulsar.Schema) ([]byte, error) {
	for {
		rec, version, exists, err := r.load(ctx, tn)
		if err != nil {
			return nil, err
		}
		for i := range rec.Versions {
			if e := &rec.Versions[i]; !e.Deleted && sameSchema(e, s) {
				return encodeSchemaVersion(e.Version), nil
			}
		}
		if last, ok := rec.latest(); ok && last.Type != int32(s.Type) &&
			last.Type != int32(pulsar.SchemaNone) && s.Type != pulsar.SchemaNone {
			return nil, errorf(ErrIncompatibleSchema, "topic %s has a schema of type %d; refusing type %d", tn.Base(), last.Type, s.Type)
		}
		e := schemaEntry{Version: int64(len(rec.Versions)), Name: s.Name, Type: int32(s.Type),
			Data: slices.Clone(s.SchemaData), Properties: kvMap(s.Properties)}
		rec.Versions = append(rec.Versions, e)
		data, err := json.Marshal(rec)
		if err != nil {
			return nil, err
		}
		if exists {
			_, err = r.store.Put(ctx, tn.schemaPath(), data, version)
		} else {
			_, err = r.store.Create(ctx, tn.schemaPath(), data, metastore.CreateParents)
		}
		if errors.Is(err, metastore.ErrBadVersion) || errors.Is(err, metastore.ErrNodeExists) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return encodeSchemaVersion(e.Version), nil
	}
}

// checkConsumerSchema accepts a consumer's schema: registered if the topic
// has none, refused if its type differs from the topic's.
func (r *schemaRegistry) checkConsumerSchema(ctx context.Context, tn TopicName, s *pulsar.Schema) error {
	rec, _, _, err := r.load(ctx, tn)
	if err != nil {
		return err
	}
	last, ok := rec.latest()
	if !ok {
		_, err := r.getOrCreate(ctx, tn, s)
		return err
	}
	if last.Type != int32(s.Type) && last.Type != int32(pulsar.SchemaNone) && s.Type != pulsar.SchemaNone {
		return errorf(ErrIncompatibleSchema, "topic %s has a schema of type %d; the consumer's is of type %d", tn.Base(), last.Type, s.Type)
	}
	return nil
}

// get returns a version of tn's schema (the latest when version is nil).
func (r *schemaRegistry) get(ctx context.Context, tn TopicName, version []byte) (schemaEntry, error) {
	rec, _, _, err := r.load(ctx, tn)
	if err != nil {
		return schemaEntry{}, err
	}
	if version == nil {
		if e, ok := rec.latest(); ok {
			return e, nil
		}
		return schemaEntry{}, errorf(ErrNotFound, "topic %s has no schema", tn.Base())
	}
	v, ok := decodeSchemaVersion(version)
	if !ok || v < 0 || v >= int64(len(rec.Versions)) || rec.Versions[v].Deleted {
		return schemaEntry{}, errorf(ErrNotFound, "topic %s has no schema version %x", tn.Base(), version)
	}
	return rec.Versions[v], nil
}

// delete removes every version of tn's schema.
func (r *schemaRegistry) delete(ctx context.Context, tn TopicName) error {
	err := r.store.Delete(ctx, tn.schemaPath(), metastore.AnyVersion)
	if errors.Is(err, metastore.ErrNotFound) {
		return nil
	}
	return err
}

func (e *schemaEntry) proto() pulsar.Schema {
	s := pulsar.Schema{Name: e.Name, SchemaData: e.Data, Type: pulsar.SchemaType(e.Type)}
	if s.SchemaData == nil {
		s.SchemaData = []byte{}
	}
	for k, v := range e.Properties {
		s.Properties = append(s.Properties, pulsar.KeyValue{Key: k, Value: v})
	}
	slices.SortFunc(s.Properties, func(a, b pulsar.KeyValue) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return s
}

// schemaTypeName is Pulsar's name of a schema type (REST).
func schemaTypeName(t int32) string {
	switch pulsar.SchemaType(t) {
	case pulsar.SchemaString:
		return "STRING"
	case pulsar.SchemaJSON:
		return "JSON"
	case pulsar.SchemaProtobuf:
		return "PROTOBUF"
	case pulsar.SchemaAvro:
		return "AVRO"
	case pulsar.SchemaBool:
		return "BOOLEAN"
	case pulsar.SchemaInt8:
		return "INT8"
	case pulsar.SchemaInt16:
		return "INT16"
	case pulsar.SchemaInt32:
		return "INT32"
	case pulsar.SchemaInt64:
		return "INT64"
	case pulsar.SchemaFloat:
		return "FLOAT"
	case pulsar.SchemaDouble:
		return "DOUBLE"
	case pulsar.SchemaDate:
		return "DATE"
	case pulsar.SchemaTime:
		return "TIME"
	case pulsar.SchemaTimestamp:
		return "TIMESTAMP"
	case pulsar.SchemaKeyValue:
		return "KEY_VALUE"
	case pulsar.SchemaInstant:
		return "INSTANT"
	case pulsar.SchemaLocalDate:
		return "LOCAL_DATE"
	case pulsar.SchemaLocalTime:
		return "LOCAL_TIME"
	case pulsar.SchemaLocalDateTime:
		return "LOCAL_DATE_TIME"
	case pulsar.SchemaProtobufNative:
		return "PROTOBUF_NATIVE"
	}
	return "NONE"
}

// schemaTypeByName inverts schemaTypeName ("BYTES" is NONE).
func schemaTypeByName(name string) (pulsar.SchemaType, bool) {
	if name == "BYTES" || name == "NONE" {
		return pulsar.SchemaNone, true
	}
	for t := pulsar.SchemaString; t <= pulsar.SchemaProtobufNative; t++ {
		if schemaTypeName(int32(t)) == name {
			return t, true
		}
	}
	return 0, false
}

// ---- Schema commands ----

// handleGetSchema serves GET_SCHEMA.
func (c *conn) handleGetSchema(req *pulsar.CommandGetSchema) {
	var r pulsar.Command
	r.Type = pulsar.TypeGetSchemaResponse
	r.GetSchemaResponse.RequestID = req.RequestID
	tn, err := ParseTopicName(req.Topic)
	if err == nil {
		ctx, cancel := c.opContext()
		defer cancel()
		var e schemaEntry
		if e, err = c.b.reg.get(ctx, tn, req.SchemaVersion); err == nil {
			r.GetSchemaResponse.Schema = e.proto()
			r.GetSchemaResponse.HasSchema = true
			r.GetSchemaResponse.SchemaVersion = encodeSchemaVersion(e.Version)
			c.out.sendCommand(&r)
			return
		}
	}
	code, msg := serverError(err)
	if errors.Is(err, ErrNotFound) {
		code = pulsar.TopicNotFound
	}
	r.GetSchemaResponse.ErrorCode, r.GetSchemaResponse.HasErrorCode, r.GetSchemaResponse.ErrorMessage = code, true, msg
	c.out.sendCommand(&r)
}

// handleGetOrCreateSchema serves GET_OR_CREATE_SCHEMA.
func (c *conn) handleGetOrCreateSchema(req *pulsar.CommandGetOrCreateSchema) {
	var r pulsar.Command
	r.Type = pulsar.TypeGetOrCreateSchemaResponse
	r.GetOrCreateSchemaResponse.RequestID = req.RequestID
	tn, err := ParseTopicName(req.Topic)
	if err == nil {
		ctx, cancel := c.opContext()
		defer cancel()
		var v []byte
		if v, err = c.b.reg.getOrCreate(ctx, tn, &req.Schema); err == nil {
			r.GetOrCreateSchemaResponse.SchemaVersion = v
			c.out.sendCommand(&r)
			return
		}
	}
	code, msg := serverError(err)
	r.GetOrCreateSchemaResponse.ErrorCode, r.GetOrCreateSchemaResponse.HasErrorCode = code, true
	r.GetOrCreateSchemaResponse.ErrorMessage = msg
	if msg == "" {
		r.GetOrCreateSchemaResponse.ErrorMessage = code.String()
	}
	c.out.sendCommand(&r)
}
