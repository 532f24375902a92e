import Foundation

/// The kernel's CPU list format (`/sys/devices/system/cpu/possible`, `cpuset.cpus`):
/// comma-separated ids and inclusive ranges, e.g. "0-3,8,10-11".
enum CPUList {
    /// The highest CPU id in `text`, or nil if it is not a CPU list.
    static func highest(_ text: String) -> Int? {
        var highest: Int?
        for part in text.split(separator: ",") {
            let bounds = part.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 1 || bounds.count == 2 else { return nil }
            var last = -1
            for bound in bounds {
                guard let id = Int(bound), id >= 0, id >= last else { return nil }
                last = id
            }
            highest = max(highest ?? last, last)
        }
        return highest
    }
}
