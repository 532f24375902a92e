import Foundation
import Testing
import StorageClasses

@Suite struct ShippedClassesTests {
    /// The compiled-in copies are exactly the files in storageclasses/, and every file is there.
    @Test func compiledCopiesEqualTheFiles() throws {
        let directory = StorageClassManifestTests.repository.appendingPathComponent("storageclasses")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(ShippedClasses.manifests.map(\.file) == files)
        for (file, yaml) in ShippedClasses.manifests {
            let onDisk = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            #expect(yaml + "\n" == onDisk, "\(file) differs from its compiled-in copy: update Sources/StorageClasses/ShippedClasses.swift")
        }
        #expect(try ShippedClasses.classes().map(\.name) == ["ec-4-2", "remote-disk", "replicated-3"])
    }
}

@Suite struct ByteSizeTests {
    @Test func parsesQuantities() {
        #expect(ByteSize.parse("4Mi") == 4 << 20)
        #expect(ByteSize.parse("10Gi") == 10 << 30)
        #expect(ByteSize.parse("2Ti") == 2 << 40)
        #expect(ByteSize.parse("65536") == 65536)
        #expect(ByteSize.parse("0") == 0)
        for bad in ["", "-1", "1.5Gi", "Gi", "4MiB", "9999999999Pi", "4 Mi"] { #expect(ByteSize.parse(bad) == nil, "\(bad)") }
    }
}
