/** The ten Fashion-MNIST classes, in label order. */
export const CLASS_NAMES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Where Zalando publishes the four files (from the dataset's README). */
export const OFFICIAL_BASE_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';

/** The Debian package dataset-fashion-mnist installs the four .gz files here. */
export const DEBIAN_DATA_DIR = '/usr/share/datasets/fashion-mnist';

export type DataFileKey = 'trainImages' | 'trainLabels' | 'testImages' | 'testLabels';

export interface DataFileSpec {
  key: DataFileKey;
  /** File name without the .gz suffix. */
  name: string;
  /** SHA-256 of the decompressed content: the same for the official and Debian's files. */
  sha256: string;
  /** Length of the decompressed content in bytes. */
  bytes: number;
  /** MD5 of the official .gz download, as Zalando publishes it (Debian recompressed its copies). */
  gzMd5: string;
}

export const DATA_FILES: readonly DataFileSpec[] = [
  {
    key: 'trainImages',
    name: 'train-images-idx3-ubyte',
    sha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    bytes: 47_040_016,
    gzMd5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d',
  },
  {
    key: 'trainLabels',
    name: 'train-labels-idx1-ubyte',
    sha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    bytes: 60_008,
    gzMd5: '25c81989df183df01b3e8a0aad5dffbe',
  },
  {
    key: 'testImages',
    name: 't10k-images-idx3-ubyte',
    sha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    bytes: 7_840_016,
    gzMd5: 'bef4ecab320f06d8554ea6380940ec79',
  },
  {
    key: 'testLabels',
    name: 't10k-labels-idx1-ubyte',
    sha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    bytes: 10_008,
    gzMd5: 'bb300cfdad3c16e7a12a480ee83cd310',
  },
];

export function dataFile(key: DataFileKey): DataFileSpec {
  const spec = DATA_FILES.find((file) => file.key === key);
  if (!spec) throw new Error(`unknown data file ${key}`);
  return spec;
}
