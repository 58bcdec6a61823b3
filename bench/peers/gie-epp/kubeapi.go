package main

// The part of a Kubernetes API server the stock endpoint picker reads when it serves an
// InferencePool: API discovery, and get, list and watch of one InferencePool and of the pods in its
// namespace. The objects are fixed at start: the pool, and one Ready pod per model-server endpoint.
// Any other request answers 404 and is logged, so a request the picker starts making shows up at once.

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	inferencev1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
)

const (
	poolNamespace  = "default"
	poolName       = "simulated-pool"
	podLabelKey    = "app"
	podLabelValue  = "simulated-replica"
	objectsRV      = "1"
	activePortsKey = "inference.networking.k8s.io/active-ports"
)

// endpoint is one model server: the pod's IP and the port it serves on.
type endpoint struct {
	IP   string
	Port int
}

// parseEndpoints reads IP:PORT,IP:PORT,... (IPv4).
func parseEndpoints(list string) ([]endpoint, error) {
	var out []endpoint
	seen := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		host, portText, err := net.SplitHostPort(item)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q is not IP:PORT: %v", item, err)
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("endpoint %q: %q is not an IPv4 address", item, host)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 {
			return nil, fmt.Errorf("endpoint %q: port must be 1..65535", item)
		}
		if seen[item] {
			return nil, fmt.Errorf("endpoint %q is listed twice", item)
		}
		seen[item] = true
		out = append(out, endpoint{IP: ip.String(), Port: port})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no endpoints given")
	}
	return out, nil
}

// targetPorts is the pool's set of target ports: every endpoint's port, once, in order of first use.
func targetPorts(eps []endpoint) []int {
	var ports []int
	seen := map[int]bool{}
	for _, e := range eps {
		if !seen[e.Port] {
			seen[e.Port] = true
			ports = append(ports, e.Port)
		}
	}
	return ports
}

// poolFor is the InferencePool selecting the pods of podsFor on their ports.
func poolFor(eps []endpoint, created metav1.Time) inferencev1.InferencePool {
	var ports []inferencev1.Port
	for _, p := range targetPorts(eps) {
		ports = append(ports, inferencev1.Port{Number: inferencev1.PortNumber(p)})
	}
	return inferencev1.InferencePool{
		TypeMeta: metav1.TypeMeta{Kind: "InferencePool", APIVersion: inferencev1.GroupVersion.String()},
		ObjectMeta: metav1.ObjectMeta{Name: poolName, Namespace: poolNamespace, UID: "00000000-0000-0000-0001-000000000000",
			ResourceVersion: objectsRV, Generation: 1, CreationTimestamp: created},
		Spec: inferencev1.InferencePoolSpec{
			Selector:    inferencev1.LabelSelector{MatchLabels: map[inferencev1.LabelKey]inferencev1.LabelValue{podLabelKey: podLabelValue}},
			TargetPorts: ports,
			EndpointPickerRef: inferencev1.EndpointPickerRef{Name: "gie-epp", Port: &inferencev1.Port{Number: 9002},
				FailureMode: inferencev1.EndpointPickerFailClose},
		},
	}
}

// podsFor makes one Ready pod per endpoint. Endpoints may share an IP (replicas on one host on
// different ports), so each pod names its own port in the pool's active-ports annotation: the
// picker then makes exactly one endpoint of each pod.
func podsFor(eps []endpoint, created metav1.Time) []corev1.Pod {
	pods := make([]corev1.Pod, len(eps))
	for i, e := range eps {
		pods[i] = corev1.Pod{
			TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{
				Name:              fmt.Sprintf("replica-%d", i),
				Namespace:         poolNamespace,
				UID:               types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i)),
				ResourceVersion:   objectsRV,
				CreationTimestamp: created,
				Labels:            map[string]string{podLabelKey: podLabelValue},
				Annotations:       map[string]string{activePortsKey: strconv.Itoa(e.Port)},
			},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name:  "model-server",
				Image: "simulated",
				Ports: []corev1.ContainerPort{{ContainerPort: int32(e.Port), Protocol: corev1.ProtocolTCP}},
			}}},
			Status: corev1.PodStatus{
				Phase:      corev1.PodRunning,
				PodIP:      e.IP,
				PodIPs:     []corev1.PodIP{{IP: e.IP}},
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: created}},
			},
		}
	}
	return pods
}

// collection is one namespaced resource the stand-in serves.
type collection struct {
	listKind string
	objects  []metav1.Object
}

type kubeAPI struct {
	// by request path of the namespaced collection, e.g. /api/v1/namespaces/default/pods
	collections map[string]collection
}

func newKubeAPI(eps []endpoint) *kubeAPI {
	created := metav1.NewTime(time.Now())
	pool := poolFor(eps, created)
	pods := podsFor(eps, created)
	podObjects := make([]metav1.Object, len(pods))
	for i := range pods {
		podObjects[i] = &pods[i]
	}
	podsPath := "/api/v1/namespaces/" + poolNamespace + "/pods"
	poolsPath := "/apis/" + inferencev1.GroupVersion.String() + "/namespaces/" + poolNamespace + "/inferencepools"
	return &kubeAPI{collections: map[string]collection{
		podsPath:  {listKind: "PodList", objects: podObjects},
		poolsPath: {listKind: "InferencePoolList", objects: []metav1.Object{&pool}},
	}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, message string) {
	writeJSON(w, code, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status: metav1.StatusFailure, Reason: reason, Code: int32(code), Message: message})
}

func (k *kubeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		log.Printf("kube API stand-in: %s %s is not served", r.Method, r.URL.RequestURI())
		writeStatus(w, http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "the stand-in is read-only")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	group := inferencev1.GroupVersion
	switch path {
	case "/api":
		writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host}}})
		return
	case "/apis":
		gv := metav1.GroupVersionForDiscovery{GroupVersion: group.String(), Version: group.Version}
		writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups: []metav1.APIGroup{{Name: group.Group, Versions: []metav1.GroupVersionForDiscovery{gv}, PreferredVersion: gv}}})
		return
	case "/api/v1":
		writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: "v1",
			APIResources: []metav1.APIResource{{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get", "list", "watch"}}}})
		return
	case "/apis/" + group.String():
		writeJSON(w, http.StatusOK, metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: group.String(),
			APIResources: []metav1.APIResource{{Name: "inferencepools", SingularName: "inferencepool", Namespaced: true, Kind: "InferencePool", Verbs: metav1.Verbs{"get", "list", "watch"}}}})
		return
	}
	if c, ok := k.collections[path]; ok {
		objects := c.matching(r.URL.Query().Get("fieldSelector"))
		if q := r.URL.Query().Get("watch"); q == "true" || q == "1" {
			k.watch(w, r, objects)
		} else {
			writeJSON(w, http.StatusOK, map[string]any{"kind": c.listKind, "apiVersion": apiVersionOf(path),
				"metadata": metav1.ListMeta{ResourceVersion: objectsRV}, "items": objects})
		}
		return
	}
	if i := strings.LastIndex(path, "/"); i > 0 {
		if c, ok := k.collections[path[:i]]; ok {
			name := path[i+1:]
			for _, o := range c.objects {
				if o.GetName() == name {
					writeJSON(w, http.StatusOK, o)
					return
				}
			}
			writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, name+" not found")
			return
		}
	}
	log.Printf("kube API stand-in: GET %s is not served", r.URL.RequestURI())
	writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the page could not be found")
}

func apiVersionOf(collectionPath string) string {
	if strings.HasPrefix(collectionPath, "/api/") {
		return "v1"
	}
	return inferencev1.GroupVersion.String()
}

// matching applies a metadata.name field selector (the only one the picker sends).
func (c collection) matching(fieldSelector string) []metav1.Object {
	name, ok := strings.CutPrefix(fieldSelector, "metadata.name=")
	if !ok {
		return c.objects
	}
	out := []metav1.Object{}
	for _, o := range c.objects {
		if o.GetName() == name {
			out = append(out, o)
		}
	}
	return out
}

// watch streams the objects as ADDED events when the client asks for the initial events (the
// watch-list protocol: then a bookmark marks their end), and otherwise nothing, since the objects
// never change; it holds the stream open until the client's timeout or disconnect.
func (k *kubeAPI) watch(w http.ResponseWriter, r *http.Request, objects []metav1.Object) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	send := func(eventType string, obj any) {
		raw, _ := json.Marshal(obj)
		_ = enc.Encode(metav1.WatchEvent{Type: eventType, Object: runtime.RawExtension{Raw: raw}})
		if flusher != nil {
			flusher.Flush()
		}
	}
	if q.Get("sendInitialEvents") == "true" {
		for _, o := range objects {
			send("ADDED", o)
		}
		kind := "Pod"
		if apiVersionOf(r.URL.Path) != "v1" {
			kind = "InferencePool"
		}
		send("BOOKMARK", map[string]any{"kind": kind, "apiVersion": apiVersionOf(r.URL.Path),
			"metadata": metav1.ObjectMeta{ResourceVersion: objectsRV, Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}})
	} else if flusher != nil {
		flusher.Flush()
	}
	timeout := 30 * time.Minute
	if s, err := strconv.Atoi(q.Get("timeoutSeconds")); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	select {
	case <-r.Context().Done():
	case <-time.After(timeout):
	}
}
