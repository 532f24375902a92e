import CSIProtocol
import Foundation
import GRPCCore

/// Checks of untrusted request fields. Names and ids are only ever data (SQLite values);
/// paths are only used after these checks, and never joined with request strings.
enum RequestChecks {
    /// The CSI spec's limit for string fields.
    static let maxNameBytes = 128
    static let maxPathBytes = 4096

    /// A CreateVolume name: 1-128 bytes, none of the control characters the spec bans.
    static func volumeName(_ name: String) throws(RPCError) {
        guard !name.isEmpty else { throw Failures.invalid("name is required") }
        guard name.utf8.count <= maxNameBytes else {
            throw Failures.invalid("name is \(name.utf8.count) bytes; at most \(maxNameBytes) are allowed")
        }
        for scalar in name.unicodeScalars {
            let v = scalar.value
            if v <= 0x08 || v == 0x0B || v == 0x0C || (0x0E...0x1F).contains(v) || (0x7F...0x9F).contains(v) {
                throw Failures.invalid("name contains the control character U+\(String(format: "%04X", v))")
            }
        }
    }

    /// A volume id field that must be present. Whether it names a volume is the engine's
    /// question (ids are looked up, never used as paths before that).
    static func volumeID(_ id: String, field: String = "volume_id") throws(RPCError) {
        guard !id.isEmpty else { throw Failures.invalid("\(field) is required") }
        guard id.utf8.count <= maxNameBytes, !id.utf8.contains(0) else { throw Failures.notFound("no volume \"\(id.prefix(64))\"") }
    }

    /// Whether `id` has the shape of a snapshot id this driver issues.
    static func isSnapshotIDShaped(_ id: String) -> Bool {
        id.hasPrefix("snap-") && id.utf8.count == 37 && id.utf8.dropFirst(5).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// Whether `id` has the shape of an id this driver issues.
    static func isVolumeIDShaped(_ id: String) -> Bool {
        id.hasPrefix("vol-") && id.utf8.count == 36 && id.utf8.dropFirst(4).allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A target or staging path: absolute, normalized (no `.`/`..`/empty components), no NUL,
    /// at most 4096 bytes, not a symbolic link, and not inside the driver's own state.
    static func path(_ path: String, field: String, stateDirectory: String) throws(RPCError) {
        guard !path.isEmpty else { throw Failures.invalid("\(field) is required") }
        guard path.utf8.count <= maxPathBytes else { throw Failures.invalid("\(field) is longer than \(maxPathBytes) bytes") }
        guard !path.utf8.contains(0) else { throw Failures.invalid("\(field) contains a NUL byte") }
        guard path.hasPrefix("/") else { throw Failures.invalid("\(field) \"\(path)\" is not absolute") }
        let components = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        let trimmed = components.last == "" ? components.dropLast() : components[...]
        for c in trimmed where c.isEmpty || c == "." || c == ".." {
            throw Failures.invalid("\(field) \"\(path)\" is not a normalized path (no '.', '..' or '//')")
        }
        guard !trimmed.isEmpty else { throw Failures.invalid("\(field) must not be /") }
        var st = stat()
        if lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK {
            throw Failures.invalid("\(field) \"\(path)\" is a symbolic link")
        }
        let state = stateDirectory.hasSuffix("/") ? stateDirectory : stateDirectory + "/"
        if (path + "/").hasPrefix(state) || state.hasPrefix(path.hasSuffix("/") ? path : path + "/") {
            throw Failures.invalid("\(field) \"\(path)\" overlaps the driver's state directory")
        }
    }

    /// The access modes a Berth volume supports: any single-node mode. A volume is served
    /// by the node that holds it, so multi-node modes are refused rather than half-kept.
    static let supportedModes: Set<Csi_V1_VolumeCapability.AccessMode.Mode> = [
        .singleNodeWriter, .singleNodeReaderOnly, .singleNodeSingleWriter, .singleNodeMultiWriter,
    ]

    /// Why a capability cannot be provided, or nil when it can.
    static func unsupported(_ capability: Csi_V1_VolumeCapability) -> String? {
        guard capability.hasAccessMode else { return "volume_capability.access_mode is required" }
        switch capability.accessType {
        case .block: return "block volumes are not supported (Berth volumes are filesystems)"
        case .mount: break
        case nil: return "volume_capability.access_type (mount) is required"
        }
        let mode = capability.accessMode.mode
        guard supportedModes.contains(mode) else {
            return "access mode \(mode) is not supported (supported: SINGLE_NODE_WRITER, SINGLE_NODE_READER_ONLY, SINGLE_NODE_SINGLE_WRITER, SINGLE_NODE_MULTI_WRITER)"
        }
        return nil
    }

    /// Checks a required list of capabilities.
    static func capabilities(_ capabilities: [Csi_V1_VolumeCapability], field: String = "volume_capabilities") throws(RPCError) {
        guard !capabilities.isEmpty else { throw Failures.invalid("\(field) is required") }
        for c in capabilities { if let why = unsupported(c) { throw Failures.invalid(why) } }
    }

    /// Whether the capability only allows reading.
    static func readOnlyMode(_ capability: Csi_V1_VolumeCapability) -> Bool {
        capability.accessMode.mode == .singleNodeReaderOnly || capability.accessMode.mode == .multiNodeReaderOnly
    }
}
