package main

// Run with `go test ./...` in this folder (needs the module cache peers:install fills).

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	inferencev1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
	podutil "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/util/pod"
)

func TestParseEndpoints(t *testing.T) {
	eps, err := parseEndpoints("127.0.0.1:8000, 127.0.0.1:8001,10.0.0.2:8000")
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 3 || eps[2] != (endpoint{IP: "10.0.0.2", Port: 8000}) {
		t.Fatalf("got %v", eps)
	}
	if got := targetPorts(eps); len(got) != 2 || got[0] != 8000 || got[1] != 8001 {
		t.Fatalf("target ports %v", got)
	}
	for _, bad := range []string{"", "localhost:8000", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:8000,127.0.0.1:8000", "[::1]:8000"} {
		if _, err := parseEndpoints(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSplitArgs(t *testing.T) {
	eps, rest, err := splitArgs([]string{"--grpc-port", "9", "--endpoints=127.0.0.1:1", "--v=1"})
	if err != nil || eps != "127.0.0.1:1" || strings.Join(rest, " ") != "--grpc-port 9 --v=1" {
		t.Fatalf("%q %q %v", eps, rest, err)
	}
	if _, _, err := splitArgs([]string{"--endpoints", "127.0.0.1:1", "--pool-name=x"}); err == nil {
		t.Error("--pool-name accepted")
	}
	if _, _, err := splitArgs([]string{"--grpc-port", "9"}); err == nil {
		t.Error("no --endpoints accepted")
	}
}

// The picker's own kind of client and informer cache read the pool and the pods from the stand-in.
func TestStandInServesThePickersClients(t *testing.T) {
	eps, _ := parseEndpoints("127.0.0.1:8000,127.0.0.1:8001")
	srv := httptest.NewServer(newKubeAPI(eps))
	defer srv.Close()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := inferencev1.Install(scheme); err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: srv.URL}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Namespaced, as the picker's manager sets its cache up.
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, DefaultNamespaces: map[string]cache.Config{poolNamespace: {}}})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not start")
	}
	pods := &corev1.PodList{}
	if err := c.List(ctx, pods, client.InNamespace(poolNamespace), client.MatchingLabels{podLabelKey: podLabelValue}); err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("%d pods", len(pods.Items))
	}
	for i, p := range pods.Items {
		if !podutil.IsPodReady(&p) || p.Status.PodIP != "127.0.0.1" || p.Annotations[activePortsKey] != []string{"8000", "8001"}[i] {
			t.Errorf("pod %d: %+v", i, p)
		}
	}
	pool := &inferencev1.InferencePool{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: poolNamespace, Name: poolName}, pool); err != nil {
		t.Fatal(err)
	}
	if len(pool.Spec.TargetPorts) != 2 || pool.Spec.Selector.MatchLabels[podLabelKey] != podLabelValue {
		t.Fatalf("pool %+v", pool.Spec)
	}

	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	none := &inferencev1.InferencePoolList{}
	if err := direct.List(ctx, none, client.InNamespace(poolNamespace), client.MatchingFields{"metadata.name": "other"}); err != nil || len(none.Items) != 0 {
		t.Fatalf("field selector: %v %d", err, len(none.Items))
	}
	if err := direct.Create(ctx, &corev1.Pod{}); err == nil {
		t.Error("a write was accepted")
	}
}
