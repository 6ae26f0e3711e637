// The Android implementations of the node core's foreign traits (node-agent/src/ffi/shell.rs).
// Calls come on the node's blocking threads: each may wait for the platform's answer, bounded.
package ai.openclaw.android

import android.Manifest
import android.app.NotificationChannel
import android.app.NotificationManager
import android.content.Context
import android.content.pm.PackageManager
import android.location.LocationManager
import android.os.BatteryManager
import android.os.Build
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import android.speech.tts.TextToSpeech
import androidx.camera.core.CameraSelector
import androidx.camera.core.ImageCapture
import androidx.camera.core.ImageCaptureException
import androidx.camera.core.ImageProxy
import androidx.camera.lifecycle.ProcessCameraProvider
import androidx.core.app.NotificationCompat
import androidx.core.content.ContextCompat
import androidx.lifecycle.LifecycleOwner
import ai.openclaw.node.CameraDevice
import ai.openclaw.node.CameraProvider
import ai.openclaw.node.DeviceInfo
import ai.openclaw.node.DeviceInfoProvider
import ai.openclaw.node.Location
import ai.openclaw.node.LocationProvider
import ai.openclaw.node.NotificationProvider
import ai.openclaw.node.Photo
import ai.openclaw.node.SecretStore
import ai.openclaw.node.ShellException
import ai.openclaw.node.SpeechProvider
import java.io.File
import java.security.KeyStore
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import javax.crypto.Cipher
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

private fun Context.granted(permission: String) =
    ContextCompat.checkSelfPermission(this, permission) == PackageManager.PERMISSION_GRANTED

/** CameraX ImageCapture bound to the service's lifecycle; back camera = 0, front = 1. */
class CameraXCamera(private val context: Context, private val owner: LifecycleOwner) : CameraProvider {
    override fun list() = listOf(CameraDevice(0u, "back"), CameraDevice(1u, "front"))

    override fun snap(index: UInt?): Photo {
        if (!context.granted(Manifest.permission.CAMERA)) throw ShellException.Denied("camera permission not granted")
        val selector = if (index == 1u) CameraSelector.DEFAULT_FRONT_CAMERA else CameraSelector.DEFAULT_BACK_CAMERA
        val photo = CompletableFuture<Photo>()
        val main = ContextCompat.getMainExecutor(context)
        val providerFuture = ProcessCameraProvider.getInstance(context)
        providerFuture.addListener({
            try {
                val provider = providerFuture.get()
                if (!provider.hasCamera(selector)) {
                    photo.completeExceptionally(ShellException.Unavailable("no camera $index on this device"))
                    return@addListener
                }
                val capture = ImageCapture.Builder().build()
                provider.unbindAll()
                provider.bindToLifecycle(owner, selector, capture)
                capture.takePicture(main, object : ImageCapture.OnImageCapturedCallback() {
                    override fun onCaptureSuccess(image: ImageProxy) {
                        // ImageCapture's default output is JPEG in plane 0.
                        val buffer = image.planes[0].buffer
                        val jpeg = ByteArray(buffer.remaining()).also { buffer.get(it) }
                        photo.complete(Photo(jpeg, image.width.toUInt(), image.height.toUInt()))
                        image.close()
                        provider.unbindAll()
                    }

                    override fun onError(e: ImageCaptureException) {
                        photo.completeExceptionally(ShellException.Failed(e.message ?: "capture failed"))
                        provider.unbindAll()
                    }
                })
            } catch (e: Exception) {
                photo.completeExceptionally(ShellException.Failed(e.message ?: e.toString()))
            }
        }, main)
        return try {
            photo.get(10, TimeUnit.SECONDS)
        } catch (e: java.util.concurrent.ExecutionException) {
            throw e.cause ?: e
        }
    }
}

/** One fix from LocationManager (getCurrentLocation on API 30+, the last known one before). */
class AndroidLocation(private val context: Context) : LocationProvider {
    override fun current(precise: Boolean): Location {
        if (!context.granted(Manifest.permission.ACCESS_COARSE_LOCATION)) throw ShellException.Denied("location permission not granted")
        val manager = context.getSystemService(LocationManager::class.java)
        val provider = if (precise && context.granted(Manifest.permission.ACCESS_FINE_LOCATION)) LocationManager.GPS_PROVIDER else LocationManager.NETWORK_PROVIDER
        if (!manager.isProviderEnabled(provider)) throw ShellException.Unavailable("location ($provider) is switched off")
        val fix = CompletableFuture<android.location.Location?>()
        if (Build.VERSION.SDK_INT >= 30) {
            manager.getCurrentLocation(provider, null, ContextCompat.getMainExecutor(context)) { fix.complete(it) }
        } else {
            @Suppress("MissingPermission")
            fix.complete(manager.getLastKnownLocation(provider))
        }
        val l = fix.get(15, TimeUnit.SECONDS) ?: throw ShellException.Failed("no location fix")
        return Location(l.latitude, l.longitude, l.accuracy.toDouble(), if (l.hasAltitude()) l.altitude else null, l.time)
    }
}

class AndroidNotifications(private val context: Context) : NotificationProvider {
    private val manager = context.getSystemService(NotificationManager::class.java)

    init {
        manager.createNotificationChannel(NotificationChannel("assistant", "Assistant", NotificationManager.IMPORTANCE_DEFAULT))
    }

    override fun notify(title: String, body: String, urgency: String) {
        if (Build.VERSION.SDK_INT >= 33 && !context.granted(Manifest.permission.POST_NOTIFICATIONS)) {
            throw ShellException.Denied("notification permission not granted")
        }
        val priority = when (urgency) { "critical" -> NotificationCompat.PRIORITY_HIGH; "low" -> NotificationCompat.PRIORITY_LOW; else -> NotificationCompat.PRIORITY_DEFAULT }
        val n = NotificationCompat.Builder(context, "assistant").setSmallIcon(android.R.drawable.ic_dialog_info)
            .setContentTitle(title).setContentText(body).setPriority(priority).build()
        manager.notify(System.nanoTime().toInt(), n)
    }
}

class AndroidSpeech(context: Context) : SpeechProvider {
    private val ready = CompletableFuture<Boolean>()
    private val tts = TextToSpeech(context) { ready.complete(it == TextToSpeech.SUCCESS) }

    override fun speak(text: String, voice: String?, rate: Float?) {
        if (!ready.get(5, TimeUnit.SECONDS)) throw ShellException.Unavailable("no text-to-speech engine")
        rate?.let { tts.setSpeechRate(it) }
        voice?.let { v -> tts.voices?.firstOrNull { it.name == v }?.let { tts.voice = it } }
        if (tts.speak(text, TextToSpeech.QUEUE_ADD, null, "openclaw") != TextToSpeech.SUCCESS) throw ShellException.Failed("speech refused")
    }
}

class AndroidDeviceInfo(private val context: Context) : DeviceInfoProvider {
    override fun info(): DeviceInfo {
        val battery = context.getSystemService(BatteryManager::class.java)
        return DeviceInfo("${Build.MANUFACTURER} ${Build.MODEL}", "Android", Build.VERSION.RELEASE,
            battery.getIntProperty(BatteryManager.BATTERY_PROPERTY_CAPACITY).takeIf { it in 0..100 }?.toUByte(),
            battery.isCharging)
    }
}

/** Secrets as files encrypted with an AES-GCM key that never leaves the Android Keystore. */
class KeystoreSecrets(context: Context) : SecretStore {
    private val dir = File(context.noBackupFilesDir, "secrets").apply { mkdirs() }

    private fun key(): SecretKey {
        val store = KeyStore.getInstance("AndroidKeyStore").apply { load(null) }
        (store.getKey("openclaw-node", null) as? SecretKey)?.let { return it }
        val gen = KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, "AndroidKeyStore")
        gen.init(KeyGenParameterSpec.Builder("openclaw-node", KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
            .setBlockModes(KeyProperties.BLOCK_MODE_GCM).setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE).build())
        return gen.generateKey()
    }

    override fun get(key: String): ByteArray? {
        val file = File(dir, key).takeIf { it.exists() } ?: return null
        val bytes = file.readBytes()
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.DECRYPT_MODE, key(), GCMParameterSpec(128, bytes, 0, 12))
        return cipher.doFinal(bytes, 12, bytes.size - 12)
    }

    override fun set(key: String, value: ByteArray) {
        val cipher = Cipher.getInstance("AES/GCM/NoPadding")
        cipher.init(Cipher.ENCRYPT_MODE, key())
        File(dir, key).writeBytes(cipher.iv + cipher.doFinal(value))
    }
}
