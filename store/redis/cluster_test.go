package redis

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
	storetest.Run(t, harnessOf(open))
}
