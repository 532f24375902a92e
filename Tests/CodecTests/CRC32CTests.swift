import Testing
import Codec

@Suite struct CRC32CTests {
    @Test func knownAnswers() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)  // the CRC-32C check value
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)  // RFC 3720 B.4
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func continuationEqualsWhole() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = CRC32C.checksum(bytes)
        for cut in [0, 1, 63, 5000, 9999, 10_000] {
            let first = CRC32C.checksum(Array(bytes[..<cut]))
            #expect(CRC32C.checksum(Array(bytes[cut...]), continuing: first) == whole)
        }
    }

    @Test func everySingleBitFlipIsDetected() {
        var bytes = Array("the quick brown fox jumps over the lazy dog".utf8)
        let good = CRC32C.checksum(bytes)
        for i in bytes.indices {
            for bit in 0..<8 {
                bytes[i] ^= 1 << bit
                #expect(CRC32C.checksum(bytes) != good)
                bytes[i] ^= 1 << bit
            }
        }
    }
}
