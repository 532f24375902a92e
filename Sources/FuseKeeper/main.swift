// berth-fuse-keeper --socket PATH [--stay]: holds FUSE sessions' descriptors across
// restarts of the daemon that serves them (FuseHandoff.FuseKeeper; docs/filesystem.md,
// "Restarts"). A daemon starts one itself when none answers at STATE/fuse-keeper.sock; it
// then ends once it holds nothing and nobody is connected. --stay: never end by itself (a
// keeper run by an orchestrator, e.g. deploy/fuse-keeper-daemonset.yaml).
import FuseHandoff
import Foundation

// Nothing of the daemon that started it but the standard streams: a socket it inherited
// would outlive the daemon here (a PostgreSQL connection holding the controller lock kept
// the next daemon waiting as a standby for good).
for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
    if let fd = Int32(entry), fd > 2 { close(fd) }
}

let arguments = Array(CommandLine.arguments.dropFirst())
let stay = arguments.contains("--stay")
let rest = arguments.filter { $0 != "--stay" }
guard rest.count == 2, rest[0] == "--socket" else {
    FileHandle.standardError.write(Data("usage: berth-fuse-keeper --socket PATH [--stay]\n".utf8))
    exit(2)
}
do {
    try FuseKeeper(socketPath: rest[1], stay: stay).run()
} catch {
    FileHandle.standardError.write(Data("berth-fuse-keeper: \(error)\n".utf8))
    exit(1)
}
