// The iOS implementations of the node core's foreign traits (see node-agent/src/ffi/shell.rs):
// each does only what only the phone can, and throws ShellError with a reason the gateway shows.
// Calls come on the node's blocking threads, never the main thread: each waits for its answer.
import AVFoundation
import CoreLocation
import Foundation
import UIKit
import UserNotifications

/// Photos with AVCapturePhotoOutput (JPEG), back camera = index 0, front = 1.
final class PhoneCamera: NSObject, CameraProvider, AVCapturePhotoCaptureDelegate, @unchecked Sendable {
    private var done: ((Result<Photo, ShellError>) -> Void)?

    private static func device(_ index: UInt32) -> AVCaptureDevice? {
        let position: AVCaptureDevice.Position = index == 1 ? .front : .back
        return AVCaptureDevice.default(.builtInWideAngleCamera, for: .video, position: position)
    }

    func list() throws -> [CameraDevice] {
        [0, 1].compactMap { i in
            Self.device(UInt32(i)).map { CameraDevice(index: UInt32(i), name: $0.localizedName) }
        }
    }

    func snap(index: UInt32?) throws -> Photo {
        guard AVCaptureDevice.authorizationStatus(for: .video) == .authorized else {
            throw ShellError.Denied(reason: "camera access is not granted to OpenClaw")
        }
        guard let device = Self.device(index ?? 0), let input = try? AVCaptureDeviceInput(device: device) else {
            throw ShellError.Unavailable(reason: "no camera \(index ?? 0) on this device")
        }
        let session = AVCaptureSession()
        let output = AVCapturePhotoOutput()
        session.sessionPreset = .photo
        guard session.canAddInput(input), session.canAddOutput(output) else {
            throw ShellError.Failed(reason: "the camera cannot be configured")
        }
        session.addInput(input)
        session.addOutput(output)
        session.startRunning()
        defer { session.stopRunning() }
        let wait = DispatchSemaphore(value: 0)
        var result: Result<Photo, ShellError> = .failure(.Failed(reason: "no photo in 10 s"))
        done = { result = $0; wait.signal() }
        output.capturePhoto(with: AVCapturePhotoSettings(format: [AVVideoCodecKey: AVVideoCodecType.jpeg]), delegate: self)
        _ = wait.wait(timeout: .now() + 10)
        return try result.get()
    }

    func photoOutput(_ output: AVCapturePhotoOutput, didFinishProcessingPhoto photo: AVCapturePhoto, error: Error?) {
        if let error {
            done?(.failure(.Failed(reason: error.localizedDescription)))
        } else if let data = photo.fileDataRepresentation() {
            let dims = photo.resolvedSettings.photoDimensions
            done?(.success(Photo(jpeg: data, width: UInt32(dims.width), height: UInt32(dims.height))))
        } else {
            done?(.failure(.Failed(reason: "the camera gave no JPEG data")))
        }
    }
}

/// One fix from CoreLocation (requestLocation), on a manager owned by the main run loop.
final class PhoneLocation: NSObject, LocationProvider, CLLocationManagerDelegate, @unchecked Sendable {
    private let manager = CLLocationManager()
    private var done: ((Result<Location, ShellError>) -> Void)?

    override init() {
        super.init()
        manager.delegate = self
    }

    func current(precise: Bool) throws -> Location {
        switch manager.authorizationStatus {
        case .authorizedAlways, .authorizedWhenInUse: break
        default: throw ShellError.Denied(reason: "location access is not granted to OpenClaw")
        }
        let wait = DispatchSemaphore(value: 0)
        var result: Result<Location, ShellError> = .failure(.Failed(reason: "no location fix in 15 s"))
        done = { result = $0; wait.signal() }
        DispatchQueue.main.async {
            self.manager.desiredAccuracy = precise ? kCLLocationAccuracyBest : kCLLocationAccuracyKilometer
            self.manager.requestLocation()
        }
        _ = wait.wait(timeout: .now() + 15)
        return try result.get()
    }

    func locationManager(_ manager: CLLocationManager, didUpdateLocations locations: [CLLocation]) {
        guard let l = locations.last else { return }
        done?(.success(Location(
            latitude: l.coordinate.latitude, longitude: l.coordinate.longitude,
            accuracyM: l.horizontalAccuracy, altitudeM: l.verticalAccuracy >= 0 ? l.altitude : nil,
            timestampMs: Int64(l.timestamp.timeIntervalSince1970 * 1000))))
        done = nil
    }

    func locationManager(_ manager: CLLocationManager, didFailWithError error: Error) {
        done?(.failure(.Failed(reason: error.localizedDescription)))
        done = nil
    }
}

final class PhoneNotifications: NotificationProvider, @unchecked Sendable {
    func notify(title: String, body: String, urgency: String) throws {
        let content = UNMutableNotificationContent()
        content.title = title
        content.body = body
        content.interruptionLevel = urgency == "critical" ? .timeSensitive : (urgency == "low" ? .passive : .active)
        let wait = DispatchSemaphore(value: 0)
        var failure: Error?
        UNUserNotificationCenter.current().add(UNNotificationRequest(identifier: UUID().uuidString, content: content, trigger: nil)) {
            failure = $0
            wait.signal()
        }
        _ = wait.wait(timeout: .now() + 5)
        if let failure { throw ShellError.Failed(reason: failure.localizedDescription) }
    }
}

final class PhoneSpeech: SpeechProvider, @unchecked Sendable {
    private let synthesizer = AVSpeechSynthesizer()

    func speak(text: String, voice: String?, rate: Float?) throws {
        let utterance = AVSpeechUtterance(string: text)
        if let voice { utterance.voice = AVSpeechSynthesisVoice(identifier: voice) ?? AVSpeechSynthesisVoice(language: voice) }
        if let rate { utterance.rate = AVSpeechUtteranceDefaultSpeechRate * rate }
        DispatchQueue.main.async { self.synthesizer.speak(utterance) }
    }
}

final class PhoneDeviceInfo: DeviceInfoProvider, @unchecked Sendable {
    func info() throws -> DeviceInfo {
        DispatchQueue.main.sync {
            let device = UIDevice.current
            device.isBatteryMonitoringEnabled = true
            let level = device.batteryLevel
            return DeviceInfo(
                model: device.model, os: device.systemName, osVersion: device.systemVersion,
                batteryPercent: level < 0 ? nil : UInt8(level * 100),
                charging: device.batteryState == .unknown ? nil : device.batteryState != .unplugged)
        }
    }
}

/// The device key in the Keychain, this device only, available after the first unlock (the
/// node runs in the background).
final class KeychainSecrets: SecretStore, @unchecked Sendable {
    private let service = "ai.openclaw.node"

    func get(key: String) throws -> Data? {
        let query: [String: Any] = [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service,
                                    kSecAttrAccount as String: key, kSecReturnData as String: true]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecItemNotFound { return nil }
        guard status == errSecSuccess else { throw ShellError.Failed(reason: "Keychain read failed (\(status))") }
        return item as? Data
    }

    func set(key: String, value: Data) throws {
        let query: [String: Any] = [kSecClass as String: kSecClassGenericPassword, kSecAttrService as String: service,
                                    kSecAttrAccount as String: key]
        SecItemDelete(query as CFDictionary)
        var add = query
        add[kSecValueData as String] = value
        add[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(add as CFDictionary, nil)
        guard status == errSecSuccess else { throw ShellError.Failed(reason: "Keychain write failed (\(status))") }
    }
}
