package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/restless-stream/ingest"
)

// maxTopicLen is the longest topic name Kafka accepts.
const maxTopicLen = 249

// ValidTopic reports whether name is a topic name Kafka accepts: 1 to 249
// of the characters a-z, A-Z, 0-9, '.', '_' and '-', and neither "." nor
// "..". (Kafka also warns that '.' and '_' collide in metric names; both
// are allowed.)
func ValidTopic(name string) error {
	switch {
	case name == "":
		return errors.New("a Kafka topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("%q is not a Kafka topic name", name)
	case len(name) > maxTopicLen:
		return fmt.Errorf("a Kafka topic name of %d characters is longer than %d", len(name), maxTopicLen)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%q is not a Kafka topic name ([a-zA-Z0-9._-], at most %d characters)", name, maxTopicLen)
		}
	}
	return nil
}

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
	errs := make(map[string]error)
	var unknown []string
	for _, t := range topics {
		if t == "" {
			continue
		}
		if _, ok := s.topics.Load(t); ok || slices.Contains(unknown, t) {
			continue
		}
		if _, bad := errs[t]; bad {
			continue
		}
		if err := ValidTopic(t); err != nil {
			errs[t] = &ingest.PermanentError{Err: fmt.Errorf("kafka: %w", err)}
			continue
		}
		unknown = append(unknown, t)
	}
	if len(unknown) == 0 {
		return errs
	}
	meta, err := s.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: unknown})
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
				if mt.Error != nil && !errors.Is(mt.Error, kafkago.UnknownTopicOrPartition) {
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
			errs[t] = fmt.Errorf("kafka: topic %q does not exist (create it, or set create_topics): %w", t, kafkago.UnknownTopicOrPartition)
		}
		return errs
	}
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range missing {
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: s.cfg.Partitions, ReplicationFactor: s.cfg.ReplicationFactor})
	}
	resp, err := s.client.CreateTopics(ctx, req)
	for _, t := range missing {
		var terr error
		if err != nil {
			terr = err
		} else if e := resp.Errors[t]; e != nil && !errors.Is(e, kafkago.TopicAlreadyExists) {
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

// partitions returns the partition count of topic. kafka-go's Transport
// answers metadata requests from its cached cluster layout (refreshed every
// few seconds, and after refreshMetadata), so this costs no round trip.
func (s *Sink) partitions(ctx context.Context, topic string) (int, error) {
	meta, err := s.client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return 0, t.Error
		}
		if len(t.Partitions) == 0 {
			return 0, kafkago.UnknownTopicOrPartition
		}
		return len(t.Partitions), nil
	}
	return 0, kafkago.UnknownTopicOrPartition
}
