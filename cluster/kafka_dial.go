package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// KafkaDial is how [DialKafka] reaches the brokers: the settings of the
// daemon's Kafka sink, for a client of the coordinator's own.
type KafkaDial struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// TLS, when not nil, is used for every connection.
	TLS *tls.Config
	// SASLMechanism is "" (none), "plain", "scram-sha-256" or
	// "scram-sha-512", with SASLUser and SASLPassword.
	SASLMechanism, SASLUser, SASLPassword string
	// ClientID names the client to the brokers. Default "restless-ingest".
	ClientID string
}

// DialKafka returns a coordinator for this member on a client of its own
// to the brokers of dial, and the function that closes that client: call it
// once Run has returned.
func DialKafka(dial KafkaDial, cfg KafkaConfig) (*Kafka, func(), error) {
	if len(dial.Brokers) == 0 {
		return nil, nil, errors.New("cluster: kafka: no broker")
	}
	id := dial.ClientID
	if id == "" {
		id = "restless-ingest"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(dial.Brokers...), kgo.ClientID(id)}
	if dial.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(dial.TLS.Clone()))
	}
	var mech sasl.Mechanism
	switch m := strings.ToLower(dial.SASLMechanism); m {
	case "":
	case "plain":
		mech = plain.Auth{User: dial.SASLUser, Pass: dial.SASLPassword}.AsMechanism()
	case "scram-sha-256":
		mech = scram.Auth{User: dial.SASLUser, Pass: dial.SASLPassword}.AsSha256Mechanism()
	case "scram-sha-512":
		mech = scram.Auth{User: dial.SASLUser, Pass: dial.SASLPassword}.AsSha512Mechanism()
	default:
		return nil, nil, fmt.Errorf("cluster: kafka: SASL mechanism %q is not plain, scram-sha-256 or scram-sha-512", dial.SASLMechanism)
	}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: kafka client: %w", err)
	}
	k, err := NewKafka(cl, cfg)
	if err != nil {
		cl.Close()
		return nil, nil, err
	}
	return k, cl.Close, nil
}
