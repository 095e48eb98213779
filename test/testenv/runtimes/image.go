// Package runtimes starts real container runtimes (dockerd, containerd with
// its CRI plugin) for tests, each in its own directories with its own
// socket, and makes their images from a static binary: there is no
// registry to pull from. Whatever cannot start stops the test through
// testenv.Unavailable, with the runtime's own error.
package runtimes

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	listenerOnce sync.Once
	listenerPath string
	listenerErr  error
	listenerOut  []byte
)

// Listener builds the static listener program (./listener) once per test
// binary and returns its path: the whole of every test image.
func Listener(t testing.TB) string {
	t.Helper()
	listenerOnce.Do(func() {
		_, self, _, _ := runtime.Caller(0)
		// One directory per test process, named by its pid: the next
		// test process removes those of processes that are gone.
		removeStale(filepath.Join(os.TempDir(), "bindwatch-listener-*"))
		dir := filepath.Join(os.TempDir(), "bindwatch-listener-"+strconv.Itoa(os.Getpid()))
		if listenerErr = os.MkdirAll(dir, 0o755); listenerErr != nil {
			return
		}
		// Runnable by the test users too.
		if listenerErr = os.Chmod(dir, 0o755); listenerErr != nil {
			return
		}
		listenerPath = filepath.Join(dir, "listener")
		cmd := exec.Command("go", "build", "-o", listenerPath, ".")
		cmd.Dir = filepath.Join(filepath.Dir(self), "listener")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		listenerOut, listenerErr = cmd.CombinedOutput()
	})
	if listenerErr != nil {
		t.Fatalf("building the listener: %v\n%s", listenerErr, listenerOut)
	}
	return listenerPath
}

// removeStale removes the directories matching pattern whose name ends in
// the pid of a process that no longer runs.
func removeStale(pattern string) {
	dirs, _ := filepath.Glob(pattern)
	for _, d := range dirs {
		pid, err := strconv.Atoi(d[strings.LastIndexByte(d, '-')+1:])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			os.RemoveAll(d)
		}
	}
}

// RootFS is a tar of a root file system holding only bin as /listener: what
// `docker import` and `podman import` take.
func RootFS(t testing.TB, bin string) []byte {
	t.Helper()
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mod := time.Unix(0, 0)
	for _, d := range []string{"proc/", "dev/", "sys/", "etc/", "tmp/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: mod}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "listener", Mode: 0o755, Size: int64(len(exe)), ModTime: mod}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(exe); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Image is an OCI image made here: the archive `ctr images import` takes,
// and the digests a runtime will report for it.
type Image struct {
	Ref string
	// Archive is an OCI image layout as a tar.
	Archive []byte
	// ManifestDigest is what a registry and containerd call the image's
	// digest; ConfigDigest is the image id Docker and Podman report.
	ManifestDigest, ConfigDigest string
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// OCIImage makes the image ref of one uncompressed layer, rootfs, whose
// entry point is /listener.
func OCIImage(t testing.TB, ref string, rootfs []byte) Image {
	t.Helper()
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	config := mustJSON(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{"/listener"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest(rootfs)}},
	})
	manifest := mustJSON(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        desc{"application/vnd.oci.image.config.v1+json", digest(config), len(config), nil},
		"layers":        []desc{{"application/vnd.oci.image.layer.v1.tar", digest(rootfs), len(rootfs), nil}},
	})
	index := mustJSON(map[string]any{
		"schemaVersion": 2,
		"manifests": []desc{{"application/vnd.oci.image.manifest.v1+json", digest(manifest), len(manifest),
			map[string]string{"io.containerd.image.name": ref}}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for _, b := range [][]byte{config, manifest, rootfs} {
		add("blobs/sha256/"+digest(b)[len("sha256:"):], b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return Image{Ref: ref, Archive: buf.Bytes(), ManifestDigest: digest(manifest), ConfigDigest: digest(config)}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
