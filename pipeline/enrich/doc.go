// Package enrich is the pipeline stage between decoding and batching: it
// turns a kernel bpf.Event into a schemas.BindEvent record, adding what the
// kernel cannot know cheaply — host identity, wall-clock time, the container
// behind the caller's cgroup, the name of the interface a socket was bound
// to.
//
// Everything slow (procfs and cgroupfs reads, netlink) happens on a cache
// miss; a hit costs a map lookup. A miss costs bounded work: a cgroup id
// that neither /proc nor the index of the cgroup2 tree answers is left to a
// background resolver (cgroupBackground) and the record goes on without a
// container, so no event waits for a scan of the tree. Text from the kernel
// or /proc is escaped by internal/safetext before it enters a record. Parsing is kept apart from I/O and takes
// root paths as parameters, so tests run on the fixture trees in testdata/.
package enrich
