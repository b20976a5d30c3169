package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// EnsureTopics checks that each topic exists and, with Config.CreateTopics,
// creates the missing ones. Without it, a missing topic is an error that
// names every missing topic. The daemon calls it at start with the
// destinations; Write does the same for topics it has not seen.
func (s *Sink) EnsureTopics(ctx context.Context, topics []string) error {
	errs := s.ensure(ctx, topics)
	if len(errs) == 0 {
		return nil
	}
	var out []error
	for _, t := range topics {
		if err, ok := errs[t]; ok {
			out = append(out, err)
			delete(errs, t)
		}
	}
	return errors.Join(out...)
}

// ensure returns an error per topic that does not exist (and could not be
// created); topics found are remembered.
func (s *Sink) ensure(ctx context.Context, topics []string) map[string]error {
	var unknown []string
	for _, t := range topics {
		if t == "" {
			continue
		}
		if _, ok := s.topics.Load(t); !ok && !slices.Contains(unknown, t) {
			unknown = append(unknown, t)
		}
	}
	errs := make(map[string]error)
	if len(unknown) == 0 {
		return errs
	}
	meta, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: unknown})
	if err != nil {
		s.seen(false)
		for _, t := range unknown {
			errs[t] = fmt.Errorf("kafka: metadata of topic %q: %w", t, err)
		}
		return errs
	}
	s.seen(true)
	var missing []string
	for _, t := range unknown {
		found := false
		for _, mt := range meta.Topics {
			if mt.Name == t {
				found = mt.Error == nil && len(mt.Partitions) > 0
				if mt.Error != nil && !errors.Is(mt.Error, kafka.UnknownTopicOrPartition) {
					errs[t] = fmt.Errorf("kafka: topic %q: %w", t, mt.Error)
				}
				break
			}
		}
		switch {
		case found:
			s.topics.Store(t, struct{}{})
		case errs[t] == nil:
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return errs
	}
	if !s.cfg.CreateTopics {
		for _, t := range missing {
			errs[t] = fmt.Errorf("kafka: topic %q does not exist (create it, or set create_topics): %w", t, kafka.UnknownTopicOrPartition)
		}
		return errs
	}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range missing {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: s.cfg.Partitions, ReplicationFactor: s.cfg.ReplicationFactor})
	}
	resp, err := s.client.CreateTopics(ctx, req)
	for _, t := range missing {
		var terr error
		if err != nil {
			terr = err
		} else if e := resp.Errors[t]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			terr = e
		}
		if terr != nil {
			errs[t] = fmt.Errorf("kafka: create topic %q (%d partitions, replication factor %d): %w", t, s.cfg.Partitions, s.cfg.ReplicationFactor, terr)
			continue
		}
		s.topics.Store(t, struct{}{})
	}
	return errs
}

// partitions returns the partition count of topic from the transport's
// cached metadata, as kafka-go's Writer does.
func (s *Sink) partitions(ctx context.Context, topic string) (int, error) {
	r, err := s.transport.RoundTrip(ctx, s.client.Addr, &metadataAPI.Request{TopicNames: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range r.(*metadataAPI.Response).Topics {
		if t.Name != topic {
			continue
		}
		if t.ErrorCode != 0 {
			return 0, kafka.Error(t.ErrorCode)
		}
		if len(t.Partitions) == 0 {
			return 0, kafka.UnknownTopicOrPartition
		}
		return len(t.Partitions), nil
	}
	return 0, kafka.UnknownTopicOrPartition
}
