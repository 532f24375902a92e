// VolumeDriver: Berth's daemon (CSI Identity/Controller/Node services on a Unix socket,
// the admin API, metrics). It is built up in issues 4–6; until then it only reports that.
import Glibc
import Placement

let version = "0.1.0"
if CommandLine.arguments.dropFirst().first == "--version" {
    print("VolumeDriver \(version)")
} else {
    print("VolumeDriver \(version): the daemon is not built yet; run `swift run -c release placement-bench`.")
    exit(1)
}
