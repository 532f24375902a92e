import Engine
import GRPCCore
import StorageClasses

/// Finds the engine's storage class for the `parameters` of a CreateVolume or GetCapacity
/// call. Kubernetes passes a StorageClass's `parameters`, not its name, so a class is
/// identified by what it does: redundancy, failure domain, chunk size and PG count.
///
/// - No parameters (besides Kubernetes' own `csi.storage.k8s.io/…` keys): the default class.
/// - Parameters matching a loaded class: that class.
/// - Valid parameters matching none: for CreateVolume, a new class named after them
///   (e.g. `replicated-2-host-4Mi-256pg`) is created, so `kubectl apply` of a new
///   StorageClass is all an admin needs; GetCapacity reports 0 for it instead.
struct ClassResolver: Sendable {
    let engine: Engine
    let defaultClass: String

    func resolve(_ parameters: [String: String], create: Bool) throws(RPCError) -> String? {
        let own = parameters.filter { !$0.key.hasPrefix(StorageClassParameters.reservedPrefix) }
        if own.isEmpty {
            guard engine.storageClass(named: defaultClass) != nil else {
                throw Failures.invalid("no parameters given and the default storage class \"\(defaultClass)\" is not loaded")
            }
            return defaultClass
        }
        let wanted: StorageClass
        do {
            wanted = try StorageClassParameters.parse(name: "", parameters: own, source: "parameters")
        } catch {
            throw Failures.invalid(error.description)
        }
        let matches = engine.classes().map(\.storageClass).filter { Self.sameLayout($0, wanted) }
        if let match = matches.min(by: { $0.name < $1.name }) { return match.name }
        guard create else { return nil }
        var named = wanted
        named.name = Self.canonicalName(wanted)
        do {
            try engine.applyClasses([named])
        } catch {
            throw Failures.map(error)
        }
        return named.name
    }

    static func sameLayout(_ a: StorageClass, _ b: StorageClass) -> Bool {
        a.redundancy == b.redundancy && a.failureDomain == b.failureDomain && a.chunkSizeBytes == b.chunkSizeBytes && a.pgCount == b.pgCount
    }

    static func canonicalName(_ c: StorageClass) -> String {
        let kind = switch c.redundancy {
        case .replicated(let n): "replicated-\(n)"
        case .erasure(let k, let m): "ec-\(k)-\(m)"
        case .single: "single"
        }
        let chunk = c.chunkSizeBytes % (1 << 20) == 0 ? "\(c.chunkSizeBytes >> 20)Mi" : "\(c.chunkSizeBytes >> 10)Ki"
        return "\(kind)-\(c.failureDomain)-\(chunk)-\(c.pgCount)pg"
    }
}
