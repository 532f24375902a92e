import Engine
import Foundation
import Logging
import StorageClasses

/// First start on a new state directory: devices (configured ones, or the embedded
/// default of local directories shaped so every shipped class can place) and the shipped
/// storage classes. A state directory that already has a cluster is left as it is.
enum EmbeddedCluster {
    static func isNew(_ stateDirectory: String) -> Bool {
        !FileManager.default.fileExists(atPath: stateDirectory + "/cluster.sqlite")
    }

    static func bootstrap(_ engine: Engine, configuration c: DaemonConfiguration, logger: Logger) throws {
        var devices = c.devices
        if devices.isEmpty {
            let count = max(1, c.embeddedHosts * c.embeddedDevicesPerHost)
            var bytes = c.embeddedDeviceBytes ?? (4 << 30)
            if c.embeddedDeviceBytes == nil {
                var info = statvfs()
                if statvfs(c.stateDirectory, &info) == 0 {
                    let free = Int64(info.f_bavail) * Int64(info.f_frsize)
                    bytes = min(bytes, max(64 << 20, free / Int64(count) * 9 / 10))
                }
            }
            for h in 1...max(1, c.embeddedHosts) {
                for d in 1...max(1, c.embeddedDevicesPerHost) {
                    devices.append(DeviceSpec(id: "h\(h)-d\(d)", host: "host-\(h)", rack: "rack-\((h - 1) % 3 + 1)", capacityBytes: bytes))
                }
            }
            logger.info("new state directory: embedded default cluster",
                        metadata: ["hosts": "\(c.embeddedHosts)", "devices_per_host": "\(c.embeddedDevicesPerHost)", "device_bytes": "\(bytes)"])
        }
        try engine.addDevices(devices)
        let shipped = try ShippedClasses.classes()
        // Only the classes this cluster can place (a 3-host cluster cannot hold EC 4+2).
        let placeable = shipped.filter { (try? $0.check(against: engine.map)) != nil }
        try engine.applyClasses(placeable)
        logger.info("loaded storage classes", metadata: ["classes": "\(placeable.map(\.name).joined(separator: ","))"])
    }
}
