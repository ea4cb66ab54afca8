package redis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard/switchboard/store"
	"github.com/switchboard/switchboard/store/storetest"
)

// clusterPort finds a port p such that p and its cluster bus port p+10000
// are both free.
func clusterPort(t *testing.T) string {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p+10000 > 65535 {
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000))
		if err != nil {
			continue
		}
		bus.Close()
		return strconv.Itoa(p)
	}
	t.Fatal("no free port pair for a cluster node")
	return ""
}

// startCluster starts a Redis Cluster of three masters and returns the
// store URL naming its nodes.
func startCluster(t *testing.T) string {
	t.Helper()
	requireRedis(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed: cannot create a cluster")
	}
	var addrs []string
	for range 3 {
		port := clusterPort(t)
		rs, err := startRedisServer(t.TempDir(), port, "--appendonly", "no", "--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		must(t, err)
		t.Cleanup(rs.kill)
		addrs = append(addrs, rs.addr)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := ctxT(t)
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: a})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				t.Fatalf("cluster node %s not ready: %v %s", a, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
	return fmt.Sprintf("redis://%s/0?cluster=true&addr=%s&addr=%s", addrs[0], addrs[1], addrs[2])
}

// TestCluster_ConformanceOnThreeMasters runs the whole conformance suite
// on a Redis Cluster of three masters: each scenario's prefix hashes to
// some slot, so the scenarios spread over the nodes, and every script works
// because all of a prefix's keys are in its one slot.
func TestCluster_ConformanceOnThreeMasters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster")
	}
	url := startCluster(t)
	open := func(t *testing.T, prefix string) *Store { return openStoreURL(t, url, prefix) }
	// The prefixes land on every node.
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{strings.TrimPrefix(strings.Split(url, "/0")[0], "redis://")}})
	defer c.Close()
	nodes := map[string]bool{}
	for range 30 {
		p := newPrefix()
		s := open(t, p)
		n, err := c.MasterForKey(context.Background(), s.k.meta())
		must(t, err)
		nodes[n.Options().Addr] = true
	}
	if len(nodes) < 2 {
		t.Fatalf("30 prefixes all on %v", nodes)
	}
	t.Logf("30 prefixes spread over %d of 3 masters", len(nodes))
	t.Run("AStepWhoseReplyIsLostIsNotSentAgain", func(t *testing.T) { stepSentOnce(t, open(t, newPrefix())) })
	storetest.Run(t, harnessOf(open))
}

// stepSentOnce: a step whose reply is lost (a read timeout, a dropped
// connection) may have run, so the store must not send it again. go-redis's
// cluster client resends such a command up to MaxRedirects times; a resent
// claim-next would claim a thread per attempt. Each master's client here
// runs the command on the real cluster and then reports it lost.
func stepSentOnce(t *testing.T, s *Store) {
	ctx := ctxT(t)
	_, err := s.TeamCreate(ctx, store.Team{ID: "care", Name: "Care", Function: "care", Strategy: "claim"})
	must(t, err)
	_, err = s.AgentCreate(ctx, store.Agent{ID: "ana", Name: "Ana", Role: store.RoleAgent, Teams: []string{"care"}, Capacity: 5},
		store.Key{ID: "key-ana", Role: store.RoleAgent, AgentID: "ana", Hash: []byte("ana-secret-hash-0123456789abcdef")})
	must(t, err)
	for i := range 5 {
		ext := fmt.Sprintf("conv-%d", i)
		res, err := s.ThreadIngest(ctx, []store.IngestParams{{
			Message: store.Message{ID: fmt.Sprintf("m-%d", i), Network: "twitter", ExternalID: ext, Kind: "dm", Text: "hi"},
			Profile: "@acme", ThreadExternalID: ext, NewThreadID: fmt.Sprintf("t-%d", i), Route: store.Route{Team: "care"},
		}})
		must(t, err)
		must(t, res[0].Err)
	}
	var lose atomic.Bool
	must(t, s.rdb.(*goredis.ClusterClient).ForEachShard(ctx, func(_ context.Context, c *goredis.Client) error {
		c.AddHook(lostReply{lose: &lose})
		return nil
	}))
	lose.Store(true)
	_, err = s.ThreadClaimNext(ctx, store.ClaimNextParams{AgentID: "ana", Teams: []string{"care"}, TTL: time.Minute})
	lose.Store(false)
	if err == nil {
		t.Fatal("claim-next whose reply was lost succeeded")
	}
	locks, err := s.LockList(ctx, "ana")
	must(t, err)
	if len(locks) != 1 {
		t.Fatalf("one claim-next sent, and ana holds %d threads: the step was sent again", len(locks))
	}
}

// lostReply lets a command run and then reports its reply lost, as a read
// timeout does, while lose is set.
type lostReply struct{ lose *atomic.Bool }

func (lostReply) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (h lostReply) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if err == nil && h.lose.Load() && cmd.Name() == "fcall" {
			err = replyTimeout{}
			cmd.SetErr(err)
		}
		return err
	}
}

func (lostReply) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

// replyTimeout is a read timeout, as net.Conn reports one.
type replyTimeout struct{}

func (replyTimeout) Error() string   { return "i/o timeout (injected)" }
func (replyTimeout) Timeout() bool   { return true }
func (replyTimeout) Temporary() bool { return true }
