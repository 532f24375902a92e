import Yams

/// Reads Kubernetes `StorageClass` manifests (YAML, one or more documents separated by
/// `---`). The same file works with `kubectl apply` and with Berth, so the checks follow
/// Kubernetes where it is strict (string parameter values, DNS-style names) and Berth
/// where it knows more (the parameters themselves).
public enum StorageClassManifest {
    /// Berth's CSI driver name: the `provisioner` of its classes and of its CSIDriver object.
    public static let driverName = "csi.berth.dev"

    static let topLevelKeys: Set<String> = [
        "apiVersion", "kind", "metadata", "provisioner", "parameters", "reclaimPolicy",
        "allowVolumeExpansion", "volumeBindingMode", "mountOptions", "allowedTopologies",
    ]

    /// Every class in `yaml`. All or nothing: the first error throws, naming `source`
    /// (e.g. the file path), the document when there are several, and the field.
    public static func parse(yaml: String, source: String) throws(StorageClassError) -> [StorageClass] {
        var documents: [Node] = []
        do {
            // Parser.nextRoot throws on malformed YAML (compose_all's sequence stops silently).
            let parser = try Parser(yaml: yaml)
            while let root = try parser.nextRoot() { documents.append(root) }
        } catch {
            throw StorageClassError(source: source, field: "(yaml)", reason: "not valid YAML: \(error)")
        }
        let nonEmpty = documents.filter { $0 != Node("", Tag(.null)) && !($0.scalar?.string.isEmpty ?? false) }
        if nonEmpty.isEmpty { throw StorageClassError(source: source, field: "(document)", reason: "no StorageClass in the file") }
        var classes: [StorageClass] = []
        var names = Set<String>()
        for (i, document) in nonEmpty.enumerated() {
            let where_ = nonEmpty.count > 1 ? "\(source) (document \(i + 1))" : source
            let storageClass = try parseDocument(document, source: where_)
            if !names.insert(storageClass.name).inserted {
                throw StorageClassError(source: where_, field: "metadata.name", reason: "\"\(storageClass.name)\" appears twice")
            }
            classes.append(storageClass)
        }
        return classes
    }

    static func parseDocument(_ node: Node, source: String) throws(StorageClassError) -> StorageClass {
        func fail(_ field: String, _ reason: String) -> StorageClassError {
            StorageClassError(source: source, field: field, reason: reason)
        }
        guard let mapping = node.mapping else { throw fail("(document)", "must be a mapping (a StorageClass object)") }
        var fields: [String: Node] = [:]
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { throw fail("(document)", "keys must be strings") }
            if !topLevelKeys.contains(name) { throw fail(name, "unknown field of a StorageClass") }
            fields[name] = value
        }
        func string(_ field: String, _ value: Node?) throws(StorageClassError) -> String? {
            guard let value else { return nil }
            guard let scalar = value.scalar, value.tag.rawValue == Tag.Name.str.rawValue else {
                throw fail(field, "must be a string")
            }
            return scalar.string
        }

        guard let apiVersion = try string("apiVersion", fields["apiVersion"]) else { throw fail("apiVersion", "required") }
        if apiVersion != "storage.k8s.io/v1" { throw fail("apiVersion", "\"\(apiVersion)\" must be storage.k8s.io/v1") }
        guard let kind = try string("kind", fields["kind"]) else { throw fail("kind", "required") }
        if kind != "StorageClass" { throw fail("kind", "\"\(kind)\" must be StorageClass") }

        guard let metadata = fields["metadata"]?.mapping else { throw fail("metadata", "required: a mapping with name") }
        guard let name = try string("metadata.name", metadata["name"]) else { throw fail("metadata.name", "required") }
        if !isDNSSubdomain(name) {
            throw fail("metadata.name", "\"\(name)\" must be a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253 characters")
        }

        guard let provisioner = try string("provisioner", fields["provisioner"]) else { throw fail("provisioner", "required") }
        if provisioner != driverName { throw fail("provisioner", "\"\(provisioner)\" is not Berth's driver (\(driverName))") }

        var reclaim = StorageClass.ReclaimPolicy.delete
        if let text = try string("reclaimPolicy", fields["reclaimPolicy"]) {
            guard let policy = StorageClass.ReclaimPolicy(rawValue: text) else { throw fail("reclaimPolicy", "\"\(text)\" must be Delete or Retain") }
            reclaim = policy
        }
        var expansion = false  // Kubernetes' default
        if let value = fields["allowVolumeExpansion"] {
            guard value.tag.rawValue == Tag.Name.bool.rawValue, let flag = value.bool else { throw fail("allowVolumeExpansion", "must be true or false") }
            expansion = flag
        }
        if let text = try string("volumeBindingMode", fields["volumeBindingMode"]),
           text != "Immediate" && text != "WaitForFirstConsumer" {
            throw fail("volumeBindingMode", "\"\(text)\" must be Immediate or WaitForFirstConsumer")
        }
        if let options = fields["mountOptions"], !(options.sequence?.isEmpty ?? false) {
            throw fail("mountOptions", "Berth volumes are FUSE mounts and take no mount options")
        }

        var parameters: [String: String] = [:]
        if let node = fields["parameters"] {
            guard let map = node.mapping else { throw fail("parameters", "must be a mapping of strings") }
            for (key, value) in map {
                guard let k = key.scalar?.string else { throw fail("parameters", "keys must be strings") }
                guard let scalar = value.scalar, value.tag.rawValue == Tag.Name.str.rawValue else {
                    let shown = value.scalar?.string ?? "…"
                    throw fail("parameters.\(k)", "must be a quoted string (\"\(shown)\"): Kubernetes rejects other types")
                }
                parameters[k] = scalar.string
            }
        }
        var storageClass = try StorageClassParameters.parse(name: name, parameters: parameters, source: source)
        storageClass.reclaimPolicy = reclaim
        storageClass.allowVolumeExpansion = expansion
        return storageClass
    }

    static func isDNSSubdomain(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let bytes = Array(name.utf8)
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
        return bytes.allSatisfy { alnum($0) || $0 == 0x2d || $0 == 0x2e }
    }
}
