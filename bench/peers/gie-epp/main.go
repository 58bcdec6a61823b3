// gie-epp runs the Gateway API Inference Extension's endpoint picker (sigs.k8s.io/gateway-api-
// inference-extension, cmd/epp, pinned in go.mod) unchanged, outside Kubernetes: its stock runner,
// default scheduling profile, metrics scraping and ext_proc server, serving an InferencePool. The one
// part swapped is the Kubernetes API it discovers the pool and its pods through: this process serves
// a read-only stand-in on loopback (kubeapi.go) with the pool and one Ready pod per endpoint given
// by --endpoints, and points the runner at it with a kubeconfig. (The runner's standalone mode,
// --endpoint-selector without a pool, cannot start in v1.5.0: setup passes the empty --pool-name to
// NewEndpointPoolFromOptions, which refuses it.)
//
// Usage: gie-epp --endpoints IP:PORT,IP:PORT,... [the stock epp flags]
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	ctrl "sigs.k8s.io/controller-runtime"

	"sigs.k8s.io/gateway-api-inference-extension/cmd/epp/runner"
)

const usage = `usage: gie-epp --endpoints IP:PORT,IP:PORT,... [epp flags]

The inference extension's endpoint picker (cmd/epp) with its pods discovered from --endpoints
instead of a Kubernetes API: an InferencePool with one Ready pod per endpoint. gie-epp sets
--pool-name and --pool-namespace itself; every other epp flag passes through
(--grpc-port, --grpc-health-port, --metrics-port, --secure-serving, --config-file, ...).
`

// ownedFlags are the stock flags gie-epp derives from --endpoints.
var ownedFlags = []string{"--pool-name", "--pool-namespace", "--pool-group", "--endpoint-selector", "--endpoint-target-ports", "--kubeconfig"}

// splitArgs takes --endpoints out of the command line and returns it with the rest.
func splitArgs(args []string) (endpoints string, rest []string, err error) {
	found := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--endpoints" || a == "-endpoints":
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("--endpoints needs a value")
			}
			endpoints, found = args[i+1], true
			i++
			continue
		case strings.HasPrefix(a, "--endpoints=") || strings.HasPrefix(a, "-endpoints="):
			endpoints, found = a[strings.Index(a, "=")+1:], true
			continue
		}
		for _, owned := range ownedFlags {
			if a == owned || strings.HasPrefix(a, owned+"=") {
				return "", nil, fmt.Errorf("%s is set by gie-epp from --endpoints", owned)
			}
		}
		rest = append(rest, a)
	}
	if !found {
		return "", nil, fmt.Errorf("--endpoints is required")
	}
	return endpoints, rest, nil
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "gie-epp: %v\n\n%s", err, usage)
	os.Exit(2)
}

func main() {
	for _, a := range os.Args[1:] {
		if a == "-h" || a == "--help" {
			fmt.Fprint(os.Stderr, usage+"\nThe epp flags:\n")
			os.Args = []string{os.Args[0], "--help"} // the stock runner prints its flags and exits
			_ = runner.NewRunner().Run(ctrl.SetupSignalHandler())
			return
		}
	}
	list, rest, err := splitArgs(os.Args[1:])
	if err != nil {
		fail(err)
	}
	eps, err := parseEndpoints(list)
	if err != nil {
		fail(err)
	}
	if n := len(targetPorts(eps)); n > 8 {
		fail(fmt.Errorf("the endpoints use %d distinct ports; the picker takes at most 8 target ports", n))
	}

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("gie-epp: cannot listen for the Kubernetes API stand-in: %v", err)
	}
	go func() { _ = http.Serve(listener, newKubeAPI(eps)) }()

	dir, err := os.MkdirTemp("", "gie-epp-")
	if err != nil {
		log.Fatalf("gie-epp: %v", err)
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	server := "http://" + listener.Addr().String()
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: stand-in, cluster: {server: %q}}]
users: [{name: stand-in, user: {}}]
contexts: [{name: stand-in, context: {cluster: stand-in, user: stand-in}}]
current-context: stand-in
`, server)), 0o600); err != nil {
		log.Fatalf("gie-epp: %v", err)
	}
	os.Setenv("KUBECONFIG", kubeconfig)
	os.Args = append([]string{os.Args[0], "--pool-name=" + poolName, "--pool-namespace=" + poolNamespace}, rest...)

	if err := runner.NewRunner().WithExecutableName("gie-epp").Run(ctrl.SetupSignalHandler()); err != nil {
		os.RemoveAll(dir)
		os.Exit(1)
	}
}
