// provisionctl: the admin CLI (classes, devices, volumes, capacity, plans). It talks to
// the daemon's admin API, which lands with issues 6 and 7.
import Glibc
import Placement

let version = "0.1.0"
if CommandLine.arguments.dropFirst().first == "--version" {
    print("provisionctl \(version)")
} else {
    print("provisionctl \(version): no commands yet; they arrive with the admin API.")
    exit(1)
}
