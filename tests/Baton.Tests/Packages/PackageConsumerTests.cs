using System.Diagnostics;
using System.Text.Json;
using System.Xml.Linq;
using Baton.Conformance;
using Baton.LoadTest;
using Baton.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Baton.Tests.Packages;

/// <summary>
/// The packages as a user gets them: <c>dotnet pack</c> into a local folder feed, restored into a fresh app that
/// adopts Baton in two lines, and <c>npm pack</c> installed into a fresh Express app the same way. Each app then
/// passes the conformance kit.
/// </summary>
[Collection(nameof(RunsAlone))]
[Trait("Category", "Functional")]
public sealed class PackageConsumerTests(ITestOutputHelper output)
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(4);

    /// <summary>The one version every package carries (Directory.Build.props).</summary>
    private static string Version => XDocument.Load(Path.Combine(TestPaths.RepositoryRoot, "Directory.Build.props")).Descendants("VersionPrefix").Single().Value;

    [Fact]
    public void TheExpressPackage_CarriesTheSameVersionAsTheNuGetPackages()
    {
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "src", "node", "baton-session", "package.json")));
        Assert.Equal(Version, package.RootElement.GetProperty("version").GetString());
    }

    [Fact]
    public async Task TheNuGetPackages_FromALocalFeed_MakeAFreshAppABackendInTwoLines_ThatPassesTheConformanceKit()
    {
        var root = TestPaths.NewFolder("nuget-consumer");
        var feed = Directory.CreateDirectory(Path.Combine(root, "feed")).FullName;
        var app = Directory.CreateDirectory(Path.Combine(root, "app")).FullName;
        foreach (var project in new[] { "src/Protocol/Baton.Protocol.csproj", "src/Backend/Baton.Backend.csproj" })
        {
            await TestServers.SetUpAsync(Command("dotnet", TestPaths.RepositoryRoot, "pack", Path.Combine(TestPaths.RepositoryRoot, project), "-c", "Release", "--no-build", "-o", feed), BuildTimeout);
        }

        foreach (var id in new[] { "Baton.Backend", "Baton.Protocol" })
        {
            // What a package page shows: its readme, licence and repository.
            using var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"{id}.{Version}.nupkg"));
            Assert.Contains(package.Entries, e => e.FullName == "README.md");
            Assert.Contains(package.Entries, e => e.FullName == $"lib/net10.0/{id}.xml");
            using var nuspec = new StreamReader(package.GetEntry($"{id}.nuspec")!.Open());
            var metadata = await nuspec.ReadToEndAsync();
            Assert.Contains("<license type=\"expression\">MIT</license>", metadata, StringComparison.Ordinal);
            Assert.Contains("<repository type=\"git\"", metadata, StringComparison.Ordinal);
            Assert.Contains("<readme>README.md</readme>", metadata, StringComparison.Ordinal);
        }

        // Only the local feed, and a package folder of its own: nothing comes from the repository's build.
        await File.WriteAllTextAsync(Path.Combine(app, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(root, "packages")}" /></config>
              <packageSources><clear /><add key="local" value="{feed}" /></packageSources>
            </configuration>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk.Web">
              <PropertyGroup>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="Baton.Backend" Version="{Version}" />
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), """
            var builder = WebApplication.CreateBuilder(args);
            builder.Services.AddBatonSession();
            var app = builder.Build();
            app.UseBatonSession();

            // The app's own routes, on the ordinary ISession API.
            app.MapGet("/health", () => "healthy");
            app.MapGet("/counter", (HttpContext c) => Results.Json(new { count = c.Session.GetInt32("counter") ?? 0 }));
            app.MapPost("/counter", (HttpContext c) =>
            {
                var count = (c.Session.GetInt32("counter") ?? 0) + 1;
                c.Session.SetInt32("counter", count);
                return Results.Json(new { count });
            });
            app.MapPost("/blob", (HttpContext c, int bytes) =>
            {
                c.Session.Set("blob", System.Security.Cryptography.RandomNumberGenerator.GetBytes(bytes));
                return Results.Json(new { bytes });
            });
            app.Run();
            """);
        await TestServers.SetUpAsync(Command("dotnet", app, "build", "-c", "Release", "-o", Path.Combine(app, "out")), BuildTimeout);

        var port = ManagedProcess.FreePort();
        using var process = TestServers.Managed("nuget-consumer", "backend", port, () => Command("dotnet", app, Path.Combine(app, "out", "Consumer.dll"), "--urls", $"http://127.0.0.1:{port}", $"--Baton:Secret={TestGateway.Secret}"),
            ct => ManagedProcess.HttpReadyAsync(new Uri($"http://127.0.0.1:{port}/health"), ct));
        await TestServers.StartAsync(process);
        await PassesTheKitAsync(new Uri($"http://127.0.0.1:{port}/"));
    }

    [Fact]
    public async Task TheExpressPackage_FromNpmPack_MakesAFreshExpressAppABackendInTwoLines_ThatPassesTheConformanceKit()
    {
        var root = TestPaths.NewFolder("npm-consumer");
        var app = Directory.CreateDirectory(Path.Combine(root, "app")).FullName;
        await TestServers.SetUpAsync(Command("npm", Path.Combine(TestPaths.RepositoryRoot, "src", "node", "baton-session"), "pack", "--silent", "--pack-destination", root), BuildTimeout);
        var tarball = Assert.Single(Directory.GetFiles(root, "baton-session-*.tgz"));
        Assert.Equal($"baton-session-{Version}.tgz", Path.GetFileName(tarball));
        var files = await PackedFilesAsync(tarball);
        Assert.Contains("package/LICENSE", files);
        Assert.Contains("package/README.md", files);
        Assert.DoesNotContain(files, f => f.StartsWith("package/test/", StringComparison.Ordinal) || f.Contains("node_modules", StringComparison.Ordinal));

        // express comes from the registry, as for any app; the library from its tarball.
        await File.WriteAllTextAsync(Path.Combine(app, "package.json"), $$"""
            { "name": "consumer", "version": "1.0.0", "private": true,
              "dependencies": { "express": "{{ExpressVersion()}}", "baton-session": "file:{{tarball}}" } }
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "app.js"), NodeConsumerApp);
        await TestServers.SetUpAsync(Command("npm", app, "install", "--no-audit", "--no-fund", "--loglevel=error"), BuildTimeout);

        var port = ManagedProcess.FreePort();
        using var process = TestServers.Managed("npm-consumer", "backend", port, () => Command("node", app, Path.Combine(app, "app.js"), port.ToString(System.Globalization.CultureInfo.InvariantCulture), TestGateway.Secret),
            ct => ManagedProcess.HttpReadyAsync(new Uri($"http://127.0.0.1:{port}/health"), ct));
        await TestServers.StartAsync(process);
        await PassesTheKitAsync(new Uri($"http://127.0.0.1:{port}/"));
    }

    // A fresh Express app: the two lines that adopt Baton, then the app's own routes on req.session.
    private const string NodeConsumerApp = """
        'use strict';
        const express = require('express');
        const batonSession = require('baton-session');
        const [port, secret] = process.argv.slice(2);
        const app = express();
        app.use(batonSession({ secret }));

        app.get('/health', (req, res) => res.type('text').send('healthy'));
        app.get('/counter', (req, res) => res.json({ count: req.session.counter || 0 }));
        app.post('/counter', (req, res) => {
          req.session.counter = (req.session.counter || 0) + 1;
          res.json({ count: req.session.counter });
        });
        app.post('/blob', (req, res) => {
          req.session.blob = require('node:crypto').randomBytes(Number(req.query.bytes)).toString('base64');
          res.json({ bytes: Number(req.query.bytes) });
        });
        app.listen(Number(port), '127.0.0.1');
        """;

    // The express version the repository's own Node packages use.
    private static string ExpressVersion()
    {
        using var package = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "src", "node", "baton-session", "package.json")));
        foreach (var section in new[] { "peerDependencies", "dependencies", "devDependencies" })
        {
            if (package.RootElement.TryGetProperty(section, out var dependencies) && dependencies.TryGetProperty("express", out var express))
            {
                return express.GetString()!;
            }
        }

        throw new InvalidOperationException("src/node/baton-session/package.json names no express version.");
    }

    private static async Task<List<string>> PackedFilesAsync(string tarball)
    {
        await using var file = File.OpenRead(tarball);
        await using var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionMode.Decompress);
        await using var tar = new System.Formats.Tar.TarReader(gzip);
        var names = new List<string>();
        while (await tar.GetNextEntryAsync() is { } entry)
        {
            names.Add(entry.Name);
        }

        return names;
    }

    private async Task PassesTheKitAsync(Uri backend)
    {
        using var text = new StringWriter();
        var report = await ConformanceKit.RunAsync(new ConformanceOptions { Backend = backend, Secret = TestGateway.Secret }, text, CancellationToken.None);
        output.WriteLine(text.ToString());
        Assert.True(report.ExitCode == 0, text.ToString());
    }

    private static ProcessStartInfo Command(string program, string folder, params string[] args)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = folder };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // The app is built as a user builds it: not as part of the repository's build or test run.
        start.Environment.Remove("MSBuildExtensionsPath");
        start.Environment.Remove("MSBUILD_EXE_PATH");
        start.Environment.Remove("MSBuildSDKsPath");
        return start;
    }
}
