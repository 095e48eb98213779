// Package enrich is the pipeline stage between decoding and batching: it
// turns a kernel bpf.Event into a schemas.BindEvent record, adding what the
// kernel cannot know cheaply — host identity, wall-clock time, the container
// behind the caller's cgroup, the name of the interface a socket was bound
// to.
//
// Everything slow (procfs and cgroupfs reads, netlink) happens on a cache
// miss; a hit costs a map lookup. Parsing is kept apart from I/O and takes
// root paths as parameters, so tests run on the fixture trees in testdata/.
package enrich
