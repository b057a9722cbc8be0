// Command kstatus prints kstatus' verdict on Kubernetes objects, as Flux's health checks and
// `kubectl wait`-style tools compute it, so that tests can assert what Flux will see.
//
// Input on stdin: JSON objects, one after another (e.g. one per line), JSON arrays of objects, or
// Kubernetes Lists (`kubectl get -o json`). Output: one JSON line per object,
// {"kind": ..., "namespace": ..., "name": ..., "status": ..., "message": ...}, where status is a
// kstatus Status (InProgress, Failed, Current, Terminating, NotFound, Unknown).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	decoder := json.NewDecoder(in)
	encoder := json.NewEncoder(out)
	for {
		var raw json.RawMessage
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading JSON: %w", err)
		}
		// Integers as int64, as the API machinery reads them (kstatus compares generations).
		var value any
		if err := utiljson.Unmarshal(raw, &value); err != nil {
			return fmt.Errorf("reading JSON: %w", err)
		}
		for _, object := range objects(value) {
			v, err := compute(object)
			if err != nil {
				return err
			}
			if err := encoder.Encode(v); err != nil {
				return err
			}
		}
	}
}

// objects flattens arrays and Kubernetes Lists into their objects.
func objects(value any) []map[string]any {
	switch v := value.(type) {
	case []any:
		var found []map[string]any
		for _, item := range v {
			found = append(found, objects(item)...)
		}
		return found
	case map[string]any:
		if items, ok := v["items"].([]any); ok {
			return objects(items)
		}
		return []map[string]any{v}
	}
	return nil
}

func compute(object map[string]any) (verdict, error) {
	u := &unstructured.Unstructured{Object: object}
	result, err := status.Compute(u)
	if err != nil {
		return verdict{}, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return verdict{
		Kind:      u.GetKind(),
		Namespace: u.GetNamespace(),
		Name:      u.GetName(),
		Status:    result.Status.String(),
		Message:   result.Message,
	}, nil
}
