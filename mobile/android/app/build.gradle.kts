plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "ai.openclaw.android"
    compileSdk = 35
    defaultConfig {
        applicationId = "ai.openclaw.node"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
    }
    sourceSets["main"].apply {
        // The shared shell code, and the bindings build-rust.sh generates (never committed).
        java.srcDirs("src/main/kotlin", "../../kotlin", "build/generated/uniffi")
        // libopenclaw_node.so per ABI, from build-rust.sh.
        jniLibs.srcDirs("build/jniLibs")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // The generated bindings call the library through JNA (its Android AAR ships the JNI part).
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("androidx.core:core-ktx:1.15.0")
    implementation("androidx.camera:camera-core:1.4.1")
    implementation("androidx.camera:camera-camera2:1.4.1")
    implementation("androidx.camera:camera-lifecycle:1.4.1")
    implementation("androidx.lifecycle:lifecycle-service:2.8.7")
}
