package natsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/restless-stream/ingest"
)

// DefaultClusterName and DefaultClusterReadyTimeout are the defaults of
// ClusterConfig.
const (
	DefaultClusterName         = "restless-ingest"
	DefaultClusterReadyTimeout = 60 * time.Second
	maxClusterNodes            = 9
)

// ClusterConfig configures a JetStream cluster of in-process NATS servers on
// one host: each node has its own client and cluster (route) port, its own
// store directory below Dir and a server name n1, n2, ….
type ClusterConfig struct {
	// Nodes is the number of servers, 3 to 9 (JetStream needs at least 3
	// for a quorum that survives one of them). Required.
	Nodes int
	// Dir holds one store directory per node (Dir/n1, Dir/n2, …); it is
	// created when missing. Required.
	Dir string
	// Name is the cluster's name. Default "restless-ingest".
	Name string
	// Host is the address every port listens on. Default "127.0.0.1".
	Host string
	// Logger receives the servers' log lines, with the attribute "node".
	// Default: none.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the cluster to elect its JetStream
	// meta leader, and for a restarted node to rejoin. Default 60s.
	ReadyTimeout time.Duration
}

// Validate reports every field of c that StartCluster would refuse, each as
// an *ingest.FieldError naming the field, joined with errors.Join.
func (c ClusterConfig) Validate() error {
	var errs []error
	if c.Nodes < 3 || c.Nodes > maxClusterNodes {
		errs = append(errs, ingest.FieldErrorf("Nodes", "%d: a JetStream cluster here has 3 to %d nodes", c.Nodes, maxClusterNodes))
	}
	if c.Dir == "" {
		errs = append(errs, ingest.FieldErrorf("Dir", "required"))
	}
	if c.Name != "" && strings.ContainsAny(c.Name, " \t\r\n.*>") {
		errs = append(errs, ingest.FieldErrorf("Name", "%q: no spaces, dots or wildcards", c.Name))
	}
	if c.ReadyTimeout < 0 {
		errs = append(errs, ingest.FieldErrorf("ReadyTimeout", "%v is negative", c.ReadyTimeout))
	}
	return errors.Join(errs...)
}

// Cluster is a running JetStream cluster of in-process servers. Its nodes
// can be stopped and restarted one by one, each keeping its ports and store.
type Cluster struct {
	cfg   ClusterConfig
	nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	name        string
	dir         string
	clientPort  int
	clusterPort int
	routes      []*url.URL
	cfg         *ClusterConfig

	mu  sync.Mutex
	srv *server.Server // nil while stopped
}

// StartCluster starts cfg.Nodes servers forming a JetStream cluster and
// returns once every node accepts connections and the cluster has a
// JetStream meta leader. Ports are chosen free; they stay the same across
// Stop and Restart.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("embedded NATS cluster: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = DefaultClusterName
	}
	if cfg.Host == "" {
		cfg.Host = DefaultHost
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultClusterReadyTimeout
	}
	ports, err := freePorts(cfg.Host, 2*cfg.Nodes)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS cluster: %w", err)
	}
	c := &Cluster{cfg: cfg}
	for i := range cfg.Nodes {
		n := &Node{
			name:        "n" + strconv.Itoa(i+1),
			clientPort:  ports[2*i],
			clusterPort: ports[2*i+1],
			cfg:         &c.cfg,
		}
		n.dir = filepath.Join(cfg.Dir, n.name)
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		for _, o := range c.nodes {
			if o != n {
				n.routes = append(n.routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort(cfg.Host, strconv.Itoa(o.clusterPort))})
			}
		}
	}
	for _, n := range c.nodes {
		if err := n.start(); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.waitMeta(cfg.ReadyTimeout); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// freePorts returns n distinct ports of host that were free a moment ago.
func freePorts(host string, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, ingest.FieldErrorf("Host", "cannot listen on %s: %w", host, err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitMeta waits until a running node is the JetStream meta leader and
// every running node knows it.
func (c *Cluster) waitMeta(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if c.MetaLeader() != nil && c.allCurrent() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded NATS cluster %s: no JetStream meta leader known to every running node within %v", c.cfg.Name, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *Cluster) allCurrent() bool {
	for _, n := range c.nodes {
		if s := n.server(); s != nil && !s.JetStreamIsCurrent() {
			return false
		}
	}
	return true
}

// Nodes returns the nodes, n1 first.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// ClientURLs returns every node's client URL, running or not, joined by
// commas as NATS clients take a server list.
func (c *Cluster) ClientURLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = n.ClientURL()
	}
	return strings.Join(urls, ",")
}

// MetaLeader returns the running node that leads the JetStream meta group
// (stream and consumer placement), or nil when none does.
func (c *Cluster) MetaLeader() *Node {
	for _, n := range c.nodes {
		if s := n.server(); s != nil && s.JetStreamIsLeader() {
			return n
		}
	}
	return nil
}

// StreamLeader returns the running node that leads the stream of the
// default account, or nil when none does.
func (c *Cluster) StreamLeader(stream string) *Node {
	for _, n := range c.nodes {
		if s := n.server(); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return n
		}
	}
	return nil
}

// Shutdown stops every running node and waits until they have stopped.
func (c *Cluster) Shutdown() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(n.Stop)
	}
	wg.Wait()
}

// Name is the node's server name (n1, n2, …).
func (n *Node) Name() string { return n.name }

// ClientURL is the URL clients connect to; it stays valid across restarts.
func (n *Node) ClientURL() string {
	return "nats://" + net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.clientPort))
}

// Running reports whether the node is running.
func (n *Node) Running() bool { return n.server() != nil }

func (n *Node) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Stop shuts the node down, as abruptly as an in-process server can stop,
// and waits until it has stopped. Its store stays. Stopping a stopped node
// does nothing.
func (n *Node) Stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts a stopped node again on its ports and store, and returns
// once it accepts connections and has caught up with the cluster's
// JetStream meta group (which needs a quorum of running nodes). Restarting
// a running node does nothing.
func (n *Node) Restart() error {
	if n.Running() {
		return nil
	}
	if err := n.start(); err != nil {
		return err
	}
	deadline := time.Now().Add(n.cfg.ReadyTimeout)
	for {
		s := n.server()
		if s == nil {
			return fmt.Errorf("embedded NATS node %s: stopped while restarting", n.name)
		}
		if s.JetStreamIsCurrent() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded NATS node %s: not caught up with the JetStream meta group within %v (is a quorum of nodes running?)", n.name, n.cfg.ReadyTimeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		return nil
	}
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return fmt.Errorf("embedded NATS node %s: %w", n.name, &ingest.FieldError{Field: "Dir", Err: err})
	}
	cfg := n.cfg
	opts := &server.Options{
		ServerName: n.name,
		Host:       cfg.Host,
		Port:       n.clientPort,
		JetStream:  true,
		StoreDir:   n.dir,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
		Cluster: server.ClusterOpts{
			Name: cfg.Name,
			Host: cfg.Host,
			Port: n.clusterPort,
		},
		Routes: n.routes,
	}
	var l *slog.Logger
	if cfg.Logger != nil {
		l = cfg.Logger.With("node", n.name)
	}
	srv, _, err := run(fmt.Sprintf("embedded NATS node %s on %s", n.name, n.ClientURL()), opts, l, cfg.ReadyTimeout)
	if err != nil {
		return err
	}
	n.srv = srv
	return nil
}
